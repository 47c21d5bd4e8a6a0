"""Near-duplicates: clips whose audio is the same recording (another crop, length or encoding).

Pure functions over stored fingerprints (:mod:`extractors.fingerprint.extractor`); no media are read. Two
clips are twins when, at the best alignment, their sub-fingerprints differ in fewer than
``max_bit_error`` of the bits over at least ``min_overlap`` hops. Only the candidate pairs of
the index (:mod:`filters.near_index`) are aligned, so the cost grows with the clips, not with
every pair. Within each group of twins one clip is kept (the best source, by the caller's rank)
and the others point to it. :func:`update` keeps the index and the aligned pairs with a dataset
root, so that each call indexes only new clips and checks them against every clip indexed before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa

from filters import near_index
from filters.near_count import MapFn
from manifests.store import DatasetRoot

T = TypeVar("T")

#: Hops (16 ms) two clips must have in common at an alignment: 2 s.
MIN_OVERLAP_HOPS = 125

#: Every candidate pair that was aligned (null bit error: fewer than MIN_OVERLAP_HOPS in common).
PAIRS_TABLE = "near_pairs"
PAIRS_SCHEMA = pa.schema(
    [
        pa.field("clip_a", pa.string(), nullable=False),
        pa.field("clip_b", pa.string(), nullable=False),
        pa.field("bit_error", pa.float64()),
        pa.field("offset_hops", pa.int32()),
    ]
)


@dataclass(frozen=True)
class Match:
    bit_error: float  # share of differing bits at the best alignment, 0..1 (unrelated audio: ~0.5)
    offset_hops: int  # hops to add to a's index to reach b's
    overlap_hops: int


def _bits(prints: np.ndarray) -> np.ndarray:
    """±1 per bit, shape (hops, 32)."""
    unpacked = (prints[:, None] >> np.arange(32, dtype=np.uint32)[None, :]) & 1
    return unpacked.astype(np.float64) * 2 - 1


def best_match(a: np.ndarray, b: np.ndarray, min_overlap: int) -> Match | None:
    """Lowest bit error of ``a`` against ``b`` over every alignment with ``min_overlap`` hops in common."""
    if min(len(a), len(b)) < min_overlap:
        return None
    x, y = _bits(a), _bits(b)
    size = len(a) + len(b)
    agree = np.fft.irfft(
        np.conj(np.fft.rfft(x, size, axis=0)) * np.fft.rfft(y, size, axis=0), size, axis=0
    ).sum(axis=1)
    steps = np.arange(size)
    lags = np.where(steps < len(b), steps, steps - size)  # circular index -> offset of b against a
    overlap = np.minimum(len(a), len(b) - lags) - np.maximum(0, -lags)
    ok = overlap >= min_overlap
    error = np.where(ok, (1 - agree / (32 * np.maximum(overlap, 1))) / 2, np.inf)
    i = int(np.argmin(error))
    return Match(float(error[i]), int(lags[i]), int(overlap[i])) if np.isfinite(error[i]) else None


def align(
    pairs: Iterable[tuple[str, str]], prints: Mapping[str, np.ndarray], min_overlap: int = MIN_OVERLAP_HOPS
) -> pa.Table:
    """Each candidate pair aligned by :func:`best_match`, as rows of :data:`PAIRS_SCHEMA`."""
    rows: dict[str, list] = {name: [] for name in PAIRS_SCHEMA.names}
    for a, b in pairs:
        match = best_match(prints[a], prints[b], min_overlap)
        for name, value in zip(
            PAIRS_SCHEMA.names,
            (a, b, match and match.bit_error, match and match.offset_hops),
            strict=True,
        ):
            rows[name].append(value)
    return pa.table(rows, schema=PAIRS_SCHEMA)


def twin_groups(
    pairs: Iterable[tuple[str, str, float]], rank: Callable[[str], Sequence[float]], max_bit_error: float
) -> dict[str, tuple[str, float]]:
    """Clip id -> (id of the twin it duplicates, bit error) for every clip that is not kept.

    ``pairs``: aligned pairs (a, b, bit error); those under ``max_bit_error`` join their clips in
    one group. ``rank(clip_id)``: larger is the better source; the best of each group is kept.
    """
    parent: dict[str, str] = {}

    def root(i: str) -> str:
        while parent.setdefault(i, i) != i:
            i = parent[i]
        return i

    errors: dict[str, float] = {}
    for a, b, error in pairs:
        if error is not None and error < max_bit_error:
            parent[root(a)] = root(b)
            errors[a] = min(errors.get(a, 1.0), error)
            errors[b] = min(errors.get(b, 1.0), error)
    groups: dict[str, list[str]] = {}
    for i in errors:
        groups.setdefault(root(i), []).append(i)
    twins = {}
    for members in groups.values():
        keep = max(members, key=lambda i: (tuple(rank(i)), i))
        twins.update({i: (keep, errors[i]) for i in members if i != keep})
    return twins


def find_twins(
    prints: Mapping[str, np.ndarray],
    rank: Callable[[str], Sequence[float]],
    max_bit_error: float = 0.35,
    min_overlap: int = MIN_OVERLAP_HOPS,
) -> dict[str, tuple[str, float]]:
    """:func:`twin_groups` of the clips of ``prints`` (clip id -> uint32 sub-fingerprints), all
    indexed at once in memory and their candidates aligned."""
    usable = {c: np.asarray(p, np.uint32) for c, p in prints.items() if len(p) >= min_overlap}
    candidates = near_index.search([], [], usable)
    table = align(candidates, usable, min_overlap)
    return twin_groups(_triples(table), rank, max_bit_error)


@dataclass(frozen=True)
class Update:
    """What one :func:`update` did: clips indexed, pairs aligned, every stored pair among the clips."""

    indexed: int
    aligned: int
    pairs: list[tuple[str, str, float]]


def update(
    root: DatasetRoot,
    clip_ids: Sequence[str],
    fetch: Callable[[Sequence[str]], Mapping[str, np.ndarray]],
    part: str,
    min_overlap: int = MIN_OVERLAP_HOPS,
    memory_mb: float = near_index.MEMORY_MB,
    map_fn: MapFn = map,
) -> Update:
    """Index the clips of ``clip_ids`` that the root's index lacks, align their candidates, and
    return every aligned pair between clips of ``clip_ids`` (those of earlier updates too).

    ``fetch(ids)``: the fingerprints of those clips (uint32 arrays); ``part``: a fresh key for the
    parts this update commits, the aligned pairs first and then the index entries (a clip counts as
    indexed once its entries are stored, so a killed update is redone, never half kept). Clips
    shorter than ``min_overlap`` hops can have no twin and are not indexed. The stored entries are
    read a row group at a time and counted within ``memory_mb`` (``map_fn`` runs the count's
    partitions; see :func:`filters.near_index.search`). Call while holding the root's lock.
    """
    parts = root.readable_rels(near_index.INDEX_TABLE)
    done = near_index.indexed(_batches(root, parts, ["clip"], lambda b: b.column("clip").to_numpy()))
    prints = fetch([c for c in clip_ids if near_index.clip_key(c) not in done])
    new = {c: np.asarray(p, np.uint32) for c, p in prints.items() if len(p) >= min_overlap}
    if new:
        rows = sum(root.parquet_file(rel).metadata.num_rows for rel in parts)
        stored = _batches(root, parts, near_index.INDEX_SCHEMA.names, lambda b: b)
        candidates = near_index.search(stored, clip_ids, new, rows, memory_mb, map_fn)
        partners = sorted({c for pair in candidates for c in pair} - set(new))
        table = align(candidates, {**new, **fetch(partners)}, min_overlap)
        root.write_table(PAIRS_TABLE, part, table)
        root.write_table(
            near_index.INDEX_TABLE,
            part,
            near_index.entries(list(new), near_index.hop_keys(list(new.values()))),
        )
    return Update(len(new), len(candidates) if new else 0, stored_pairs(root, clip_ids))


def _batches(
    root: DatasetRoot, parts: Sequence[str], columns: Sequence[str], take: Callable[[pa.Table], T]
) -> Iterator[T]:
    """``take`` of each row group of the Parquet files ``parts`` of the root (only ``columns``)."""
    for rel in parts:
        file = root.parquet_file(rel)
        for group in range(file.num_row_groups):
            yield take(file.read_row_group(group, columns=list(columns)))


def stored_pairs(root: DatasetRoot, clip_ids: Iterable[str]) -> list[tuple[str, str, float]]:
    """The root's aligned pairs between clips of ``clip_ids``: (a, b, bit error), a < b."""
    table = root.read_table(PAIRS_TABLE)
    wanted = set(clip_ids)
    return [t for t in _triples(table) if t[0] in wanted and t[1] in wanted] if table is not None else []


def _triples(table: pa.Table) -> list[tuple[str, str, float]]:
    """(a, b, bit error) of the aligned pairs of ``table`` that have one, each pair once."""
    best: dict[tuple[str, str], float] = {}
    columns = (table.column(n).to_pylist() for n in ("clip_a", "clip_b", "bit_error"))
    for a, b, error in zip(*columns, strict=True):
        if error is not None:
            best[a, b] = min(error, best.get((a, b), 1.0))
    return [(a, b, e) for (a, b), e in sorted(best.items())]
