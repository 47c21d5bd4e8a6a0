"""An index of audio sub-fingerprints that finds near-duplicate candidates without comparing every pair.

Bit-sampling LSH. Table ``j`` of :data:`TABLES` reads :data:`BITS` fixed, randomly chosen bits
from the :data:`SPAN_HOPS` consecutive 32-bit sub-fingerprints that start at a hop (16 ms, see
:mod:`extractors.fingerprint.extractor`) and packs them into one uint32 key. Every hop of every clip is an
entry ``(table, key, clip, hop)``. Two clips that are the same recording agree on most bits at one
alignment, so their entries share keys many times at one offset (``hop_b - hop_a``); unrelated
clips share a key only by chance, at scattered offsets. A pair is a candidate when one offset
collects :data:`~filters.near_count.MIN_VOTES` shared keys; candidates are then aligned exactly
(:func:`filters.duplicates.best_match`), so the index decides only what is compared, never what
is a twin.

Cost: every entry is sorted once per table, and the pairs inside a bucket (entries with one key)
are counted; buckets with more than :data:`~filters.near_count.MAX_BUCKET` entries (a key common
to many clips) are skipped. Chance collisions grow with the square of the entries: ``BITS`` = 28 keeps them few up
to about 8x10^7 hops a table (2x10^5 clips of 6 s: a bucket holds 0.3 entries on average). Two
hops of different clips share a 28-bit key with probability 1.9e-8 in the benchmark's corpus and
3.2e-7 over the pool's real clips (5x and 85x 2^-28: bits are correlated, and the pool holds some
repeated audio), so a real corpus makes more of them than the benchmark. Every 4x more hops
needs 2 more bits (and more tables to keep the recall) for the work to stay linear
(docs/benchmarks.md, "Near-duplicates").

Stored with the dataset root: the entries are the table :data:`INDEX_TABLE`, one part per update,
and every pair that was aligned is a row of :data:`PAIRS_TABLE` with its bit error (so a changed
``duplicate_max_bit_error`` needs no new alignment). An update indexes only clips that have no
entries yet and counts only collisions that involve one of them, so the pairs it finds are those a
full rebuild finds among the new clips and between them and every clip indexed before. An update
reads the stored entries a row group at a time, and the count holds at most ``memory_mb`` of
entries or votes at once (:mod:`filters.near_count`); its files go to a spill folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from filters.near_count import Chunk, Layout, MapFn, candidate_pairs

#: Bits per key. Fewer bits find twins with more bit errors and make more chance collisions.
BITS = 28
#: Consecutive hops a key draws its bits from (64 ms): 128 positions, so tables sample different bits.
SPAN_HOPS = 4
#: Independent keys per hop.
TABLES = 16
#: Memory (MB) the collision count may hold at once, in one process (:mod:`filters.near_count`).
MEMORY_MB = 1024.0
#: Hops of new clips whose keys are made and routed at once (16 tables: about 0.8 GB while routed).
CHUNK_HOPS = 1 << 20
#: Seed of the bit choice: rows written with another choice cannot be matched (change the table name).
SEED = 15

#: The index entries: one row per (table, hop) of every indexed clip.
INDEX_TABLE = "near_index"
INDEX_SCHEMA = pa.schema(
    [
        pa.field("clip", pa.int64(), nullable=False),  # clip_key(clip_id)
        pa.field("table", pa.uint8(), nullable=False),
        pa.field("key", pa.uint32(), nullable=False),
        pa.field("hop", pa.uint16(), nullable=False),  # first hop of the key's span
    ]
)
Keys = tuple[
    np.ndarray, np.ndarray, np.ndarray
]  # what hop_keys returns: keys (tables, n), clip (n,), hop (n,)
_MAX_HOP = np.iinfo(np.uint16).max  # hops past 17.5 min into a clip are not indexed


def clip_key(clip_id: str) -> int:
    """A stable signed 64-bit number for a clip id (the index stores numbers, not strings)."""
    return int.from_bytes(hashlib.blake2b(clip_id.encode(), digest_size=8).digest(), "little", signed=True)


def key_plan(tables: int = TABLES, bits: int = BITS, span: int = SPAN_HOPS, seed: int = SEED) -> np.ndarray:
    """Which bits each table reads: shape (tables, bits, 2) of (hop offset 0..span-1, bit 0..31)."""
    rng = np.random.default_rng(seed)
    flat = np.stack([rng.choice(span * 32, bits, replace=False) for _ in range(tables)])
    return np.stack([flat // 32, flat % 32], axis=-1)


def hop_keys(prints: Sequence[np.ndarray], plan: np.ndarray | None = None) -> Keys:
    """Keys of every hop of ``prints`` (uint32 sub-fingerprints, one array per clip).

    Returns ``keys`` (tables, n) uint32, ``clip`` (n,) int32 (position in ``prints``) and ``hop``
    (n,) uint16. A span that runs past its clip's end or holds a zero sub-fingerprint (digital
    silence: every bit 0) has no key.
    """
    plan = key_plan() if plan is None else plan
    span = int(plan[..., 0].max()) + 1
    lengths = np.array([len(p) for p in prints], np.int64)
    flat = (
        np.concatenate([np.asarray(p, np.uint32) for p in prints]) if len(prints) else np.zeros(0, np.uint32)
    )
    clip = np.repeat(np.arange(len(prints), dtype=np.int32), lengths)
    hop = np.arange(len(flat), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    n = max(len(flat) - span + 1, 0)
    ok = (hop[:n] + span <= np.repeat(lengths, lengths)[:n]) & (hop[:n] < _MAX_HOP)
    for d in range(span):
        ok &= flat[d : d + n] != 0
    hops = [flat[d : d + n][ok] for d in range(span)]
    keys = np.zeros((len(plan), len(hops[0]) if span else 0), np.uint32)
    for j, table in enumerate(plan):
        for i, (d, bit) in enumerate(table):
            keys[j] |= ((hops[d] >> np.uint32(bit)) & np.uint32(1)) << np.uint32(i)
    return keys, clip[:n][ok], hop[:n][ok].astype(np.uint16)


def entries(clip_ids: Sequence[str], keys: Keys) -> pa.Table:
    """Index rows (:data:`INDEX_SCHEMA`) of :func:`hop_keys` ``keys`` of the clips ``clip_ids``."""
    key, clip, hop = keys
    numbers = np.array([clip_key(c) for c in clip_ids], np.int64)
    tables = len(key)
    return pa.table(
        {
            "clip": np.tile(numbers[clip] if len(clip_ids) else np.zeros(0, np.int64), tables),
            "table": np.repeat(np.arange(tables, dtype=np.uint8), key.shape[1]),
            "key": key.ravel(),
            "hop": np.tile(hop, tables),
        },
        schema=INDEX_SCHEMA,
    )


def search(
    stored: Iterable[pa.Table],
    clip_ids: Sequence[str],
    new: Mapping[str, np.ndarray],
    stored_rows: int = 0,
    memory_mb: float = MEMORY_MB,
    map_fn: MapFn = map,
    spill: Path | None = None,
) -> list[tuple[str, str]]:
    """Candidate pairs ``(a, b)``, ``a < b``, with at least one clip of ``new`` (clip id -> uint32
    sub-fingerprints, not in ``stored``), among those and the clips of ``clip_ids``.

    ``stored``: the index entries (:data:`INDEX_SCHEMA`) of clips indexed before, in batches of
    any size (entries of clips not in ``clip_ids`` are ignored), ``stored_rows`` of them. The collisions are counted by
    :func:`filters.near_count.candidate_pairs` in partitions that each fit in ``memory_mb``
    (``map_fn`` runs them; ``spill``: where their files go); the new clips' keys are made
    :data:`CHUNK_HOPS` hops at a time. At most 2^21 clips.
    """
    ids = sorted(set(clip_ids) | set(new))
    fresh = np.zeros(len(ids), bool)
    position = np.searchsorted(ids, list(new)).astype(np.int32)
    fresh[position] = True
    prints = [np.asarray(p, np.uint32) for p in new.values()]
    hashes = np.array([clip_key(c) for c in ids], np.int64)
    plan = key_plan()

    def chunks() -> Iterator[Chunk]:
        for batch in stored:
            number, known = _numbers(batch.column("clip").to_numpy(), hashes)
            yield (
                batch.column("table").to_numpy()[known],
                batch.column("key").to_numpy()[known],
                number[known],
                batch.column("hop").to_numpy()[known],
            )
        for first, last in _spans([len(p) for p in prints], CHUNK_HOPS):
            key, clip, hop = hop_keys(prints[first:last], plan)
            yield (
                np.repeat(np.arange(len(plan), dtype=np.uint8), key.shape[1]),
                key.ravel(),
                np.tile(position[first:last][clip], len(plan)),
                np.tile(hop, len(plan)),
            )

    entries = len(plan) * sum(len(p) for p in prints) + stored_rows
    layout = Layout.for_entries(len(plan), BITS, entries, memory_mb)
    return [(ids[a], ids[b]) for a, b in candidate_pairs(chunks(), fresh, layout, map_fn, spill)]


def _spans(lengths: Sequence[int], most: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges ``[first, last)`` of the items of ``lengths`` holding about ``most`` in all
    (an item longer than ``most`` alone)."""
    first, total = 0, 0
    for i, n in enumerate(lengths):
        if total and total + n > most:
            yield first, i
            first, total = i, 0
        total += n
    if first < len(lengths):
        yield first, len(lengths)


def _numbers(clip: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position in ``hashes`` (the :func:`clip_key` of each clip of a count) of each entry's clip
    (int32, shape of ``clip``) and whether it is there at all (bool). Entries come in runs of one
    clip, so only each run's start is looked up."""
    order = np.argsort(hashes)
    starts = np.flatnonzero(np.r_[True, clip[1:] != clip[:-1]]) if len(clip) else np.zeros(0, np.int64)
    runs = np.diff(np.r_[starts, len(clip)])
    at = np.minimum(np.searchsorted(hashes[order], clip[starts]), max(len(hashes) - 1, 0))
    known = hashes[order][at] == clip[starts] if len(hashes) else np.zeros(len(starts), bool)
    return np.repeat(order[at].astype(np.int32), runs), np.repeat(known, runs)


def indexed(clips: Iterable[np.ndarray]) -> set[int]:
    """The :func:`clip_key` of every clip with entries, from the ``clip`` column of the stored
    entries in batches."""
    found: set[int] = set()
    for batch in clips:
        found.update(np.unique(batch).tolist())
    return found
