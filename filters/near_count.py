"""Counting the near-duplicate index's key collisions in partitions, in bounded memory.

The index (:mod:`filters.near_index`) makes a candidate of every pair of clips whose entries share
a key at one offset at least :data:`MIN_VOTES` times. Counting that in one array holds every
chance collision of the corpus at once (22.5 GB at 2x10^5 clips). Here it is done in three passes
over files in a spill folder, each of which holds a bounded share in memory:

1. **Route.** Entries ``(table, key, clip, hop)`` arrive in chunks of any size; each is appended
   to the file of its partition: its table and the top bits of its key (``ranges`` per table).
   Entries with one key are in one partition, so a bucket never spans two.
2. **Vote.** Each partition, alone in memory, is sorted by key; every two entries of different
   clips in a bucket of at most :data:`MAX_BUCKET` make a vote ``(clip a, clip b, offset)``, and
   each vote is appended to the shard file its pair hashes to (``shards`` of them).
3. **Tally.** Each shard, alone in memory, holds every vote of its pairs: a pair with
   :data:`MIN_VOTES` votes at one offset is a candidate.

Partitions and shards are independent jobs: ``map_fn`` runs them (the builtin ``map`` in this
process, or Ray tasks; the spill folder must then be one that every worker sees). The result is
the same whatever the number of partitions, shards or workers.
"""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Shared keys at one offset that make a pair a candidate.
MIN_VOTES = 3
#: Buckets with more entries than this are left out (a key common to many clips says nothing).
MAX_BUCKET = 4
#: The most clips one count can number (a vote packs two clip numbers of 21 bits and an offset).
MAX_CLIPS = 1 << 21
#: Bytes of memory one entry of a partition needs while it is voted on (sort keys, rows, buckets,
#: clips and hops of the pairs): measured, with a margin.
BYTES_PER_ENTRY = 64

_NONE = np.zeros(0, np.int64)
ENTRY = np.dtype([("key", "<u4"), ("clip", "<i4"), ("hop", "<u2")])
_OFFSET = 1 << 16  # offsets are -65535..65535 hops: stored shifted by this, in 17 bits
MapFn = Callable[[Callable[..., object], Iterable[object]], Iterable[object]]
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # table, key, clip, hop (equal lengths)


@dataclass(frozen=True)
class Layout:
    """How a count is cut: ``ranges`` partitions per table (by the top bits of the key, of
    ``bits``), and ``shards`` files of votes."""

    tables: int
    bits: int
    ranges: int
    shards: int

    @classmethod
    def for_entries(cls, tables: int, bits: int, entries: int, memory_mb: float) -> Layout:
        """The fewest partitions whose largest share (``entries`` spread evenly over ``tables``
        and key ranges) fits in ``memory_mb``, with as many vote shards."""
        per_table = max(entries // max(tables, 1), 1)
        ranges = 1 << max(0, math.ceil(math.log2(per_table * BYTES_PER_ENTRY / (memory_mb * 2**20))))
        ranges = min(ranges, 1 << bits)
        return cls(tables, bits, ranges, tables * ranges)

    def partition(self, table: np.ndarray, key: np.ndarray) -> np.ndarray:
        """The partition of each entry: ``table * ranges + top bits of key`` (int64)."""
        shift = self.bits - int(math.log2(self.ranges))
        return table.astype(np.int64) * self.ranges + (key.astype(np.int64) >> shift)


def candidate_pairs(
    chunks: Iterable[Chunk],
    new: np.ndarray,
    layout: Layout,
    map_fn: MapFn = map,
    spill: Path | None = None,
) -> np.ndarray:
    """Pairs of clips whose entries share a key at one offset at least :data:`MIN_VOTES` times.

    ``chunks``: the entries, as arrays ``(table uint8, key uint32, clip int32, hop uint16)``;
    clips are numbered 0..len(new)-1. ``new`` (clips,) bool: the clips this count adds; only
    collisions with at least one new entry count, so the result is the pairs that involve a new
    clip, with the same votes as a count over all clips at once. Returns (pairs, 2) int32, a < b.
    ``spill``: the folder for the passes' files (a temporary one, removed after, by default).
    """
    if len(new) > MAX_CLIPS:
        raise ValueError(f"{len(new)} clips: one count numbers at most {MAX_CLIPS}")
    with _folder(spill) as work:
        np.save(work / "new.npy", new)
        route(chunks, layout, work)
        jobs = [(work, p, layout.shards) for p in range(layout.tables * layout.ranges)]
        list(map_fn(vote_partition, jobs))
        found = list(map_fn(tally_shard, [(work, s) for s in range(layout.shards)]))
    pairs: np.ndarray = np.unique(np.concatenate([np.asarray(f, np.int64) for f in found] + [_NONE]))
    return np.stack([pairs >> 21, pairs & (MAX_CLIPS - 1)], axis=1).astype(np.int32)


@contextmanager
def _folder(spill: Path | None) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="near-count-", dir=spill))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def route(chunks: Iterable[Chunk], layout: Layout, work: Path) -> None:
    """Pass 1: append each entry to its partition's file ``work/entries-<p>.bin``."""
    files: dict[int, object] = {}
    try:
        for table, key, clip, hop in chunks:
            part = layout.partition(table, key)
            order = np.argsort(part, kind="stable")
            part = part[order]
            rows = np.empty(len(order), ENTRY)
            rows["key"], rows["clip"], rows["hop"] = key[order], clip[order], hop[order]
            bounds = np.flatnonzero(np.r_[True, part[1:] != part[:-1], True])
            for lo, hi in itertools.pairwise(bounds):
                p = int(part[lo])
                if p not in files:
                    files[p] = open(work / f"entries-{p}.bin", "ab")  # noqa: SIM115 (closed below)
                rows[lo:hi].tofile(files[p])  # type: ignore[arg-type]
    finally:
        for f in files.values():
            f.close()  # type: ignore[attr-defined]


def vote_partition(job: tuple[Path, int, int]) -> int:
    """Pass 2 for one partition: its collisions with a new entry, as votes appended to the shard
    files ``work/votes-<shard>-<partition>.bin`` (int64: clip a << 38 | clip b << 17 | offset).
    Returns the votes written."""
    work, p, shards = job
    path = work / f"entries-{p}.bin"
    if not path.exists():
        return 0
    rows = np.fromfile(path, ENTRY)
    new = np.load(work / "new.npy")
    votes = bucket_votes(rows["key"], rows["clip"], rows["hop"], new)
    del rows
    pair = votes >> 17
    mixed = pair.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps: a hash of the pair
    shard = ((mixed >> np.uint64(32)) % np.uint64(shards)).astype(np.int64)
    order = np.argsort(shard, kind="stable")
    votes, shard = votes[order], shard[order]
    bounds = np.flatnonzero(np.r_[True, shard[1:] != shard[:-1], True]) if len(shard) else _NONE
    for lo, hi in itertools.pairwise(bounds):
        votes[lo:hi].tofile(work / f"votes-{int(shard[lo])}-{p}.bin")
    return len(votes)


def bucket_votes(key: np.ndarray, clip: np.ndarray, hop: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Every collision of entries of two clips, one of them new, in a bucket (entries with one
    key) of 2..:data:`MAX_BUCKET` entries, as int64 votes ``a << 38 | b << 17 | offset``
    (a < b clip numbers; offset: hops to add to a's to reach b's, shifted by 2^16)."""
    if not new.all():  # only buckets that hold a new entry
        rows = np.flatnonzero(np.isin(key, key[new[clip]]))
        key, clip, hop = key[rows], clip[rows], hop[rows]
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
    keep = np.repeat((sizes > 1) & (sizes <= MAX_BUCKET), sizes)
    order, bucket = order[keep], np.repeat(np.arange(len(sizes)), sizes)[keep]
    c, h = clip[order], hop[order].astype(np.int64)
    votes = []
    x: np.ndarray = np.arange(len(order))
    for step in range(1, MAX_BUCKET):
        x = x[x + step < len(order)]
        x = x[bucket[x + step] == bucket[x]]
        if not len(x):
            break
        a, b = c[x], c[x + step]
        use = (a != b) & (new[a] | new[b])
        lo, hi, swap = np.minimum(a, b)[use], np.maximum(a, b)[use], (a > b)[use]
        offset = np.where(swap, -1, 1) * (h[x + step] - h[x])[use]
        votes.append((lo.astype(np.int64) << 38) | (hi.astype(np.int64) << 17) | (offset + _OFFSET))
    return np.concatenate(votes) if votes else _NONE


def tally_shard(job: tuple[Path, int]) -> np.ndarray:
    """Pass 3 for one shard: the pairs (``a << 21 | b``, int64) with :data:`MIN_VOTES` votes at
    one offset."""
    work, s = job
    parts = sorted(work.glob(f"votes-{s}-*.bin"))
    if not parts:
        return _NONE
    votes = np.concatenate([np.fromfile(f, np.int64) for f in parts])
    packed, counts = np.unique(votes, return_counts=True)
    return np.unique(packed[counts >= MIN_VOTES] >> 17)
