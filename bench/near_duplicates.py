"""Near-duplicate search at scale: recall of the index against exact search, time, growth, updates.

    python -m bench.near_duplicates [--source ROOT ...] [--sizes 2000 20000 200000] [--exact 1000]
                                    [--incremental 20000] [--json F]

Corpora are made from REAL sub-fingerprints (``tracks.audio_fingerprint`` of ``--source`` roots,
default the pool root ``/work/data/pool_m`` and the fixture run ``/tmp/qs``): the real clips,
silent hops left out, are laid end to end in one ring, and each synthetic clip takes each group of
4 adjacent bits (4 neighbouring band pairs) from its own random place in that ring. A clip so has
the real temporal statistics of every bit, and no two clips share the same stretch of the ring in
all their bits (a corpus of 2x10^5 clips is about 1,300 times the real audio; spliced in time
instead, every clip would share short exact pieces with hundreds of others). Lengths are those
of the real clips, kept within 125..625 hops (2..10 s).

A planted twin is made as real twins are: a crop of its clip (at least 135 hops in common), with
up to 150 unrelated hops before and after it (a longer recording), and every bit flipped with a
target probability. Targets: 80% of pairs in 0.05..0.22 (the real range: the fixture twin
sadtalker_WDA_AOC_000 against vr_face_3 differs in 0.069; re-encodings of fixture audio measured
0.10 as mp3 32 kb/s, 0.16-0.18 as AAC 24 kb/s, 0.17 as Opus 16 kb/s, 0.14 half a hop later, 0.20
under 20 dB of noise, 0.19 as mp3 24 kb/s half a hop later) and 20% in 0.22..0.33 (up to near
the 0.35 threshold). Flips spread evenly over hops are the hard case for the index: real errors
bunch in some hops (the fixture twin's per-hop error: 10th-90th percentile 0-0.16 around 0.069;
the re-encodings' 0.4-1.7 times their mean), and a hop with few errors is where keys agree.

Measured: (a) recall of the index (candidates aligned with best_match) against the exact search
(every pair aligned) on ``--exact`` clips, and whether the exact pairs are the planted ones
there; against the planted pairs (aligned exactly) at every size; (b) seconds at each size, and
the growth per 10x clips; the old method (embedding cosine >= 0.8 over every pair, then
alignment of those candidates) at the smallest size as the baseline; (c) an update of a stored
index (90% indexed, then 10% added) against a full rebuild, with equal pairs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.peak import Peak, tree_rss_mb
from curate.query import query
from curate.ray_executor import ray_map
from extractors.fingerprint.extractor import band_energies, fingerprint
from filters import near_count, near_index
from filters.duplicates import MIN_OVERLAP_HOPS, align, best_match, update
from ingest.media import read_audio
from manifests.store import DatasetRoot
from settings.config import RayConfig

SOURCES = ("/work/data/pool_m", "/tmp/qs")
FIXTURE_TWIN = ("vr_face_3.mp4", "sadtalker_WDA_AOC_000.mp4")
THRESHOLD = 0.35
REALISTIC = (0.05, 0.22)
NEAR_THRESHOLD = (0.22, 0.33)
OLD_COSINE = 0.8  # the candidate rule this index replaced


def real_rows(sources: list[str]) -> list[dict[str, Any]]:
    """clip_id, file name, fingerprint and embedding of every clip with a fingerprint."""
    rows = []
    for root in sources:
        if Path(root).is_dir():
            rows += query(
                root,
                """select t.clip_id, regexp_extract(v.uri, '[^/]+$') name, t.audio_fingerprint fp, t.audio_embedding emb
                   from tracks t join clips c using (clip_id) join videos v on v.video_id = c.video_id
                   where t.audio_fingerprint is not null""",
            ).to_pylist()
    return rows


def audio_rows(files: list[str]) -> list[dict[str, Any]]:
    """Rows as :func:`real_rows` gives them, fingerprinted from media files (no embedding)."""
    rows = []
    for name in files:
        try:
            audio = read_audio(Path(name))
        except Exception as error:  # a file without usable audio is left out, and said so
            print(f"left out {name}: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        rows.append({"clip_id": name, "name": Path(name).name, "fp": fingerprint(band_energies(audio))})
    return rows


def fixture_twin(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fixture twin's bit error at its best alignment and the spread of its per-hop errors."""
    named = {r["name"]: np.asarray(r["fp"], np.uint32) for r in rows}
    if not set(FIXTURE_TWIN) <= set(named):
        return None
    a, b = (named[n] for n in FIXTURE_TWIN)
    match = best_match(a, b, MIN_OVERLAP_HOPS)
    assert match is not None
    d = match.offset_hops
    i = np.arange(max(0, -d), min(len(a), len(b) - d))
    errors = np.unpackbits((a[i] ^ b[i + d]).view(np.uint8)).reshape(-1, 32).mean(axis=1)
    quantiles = np.percentile(errors, [10, 50, 90]).round(3).tolist()
    return {"bit_error": round(match.bit_error, 4), "per_hop_p10_p50_p90": quantiles}


class Corpus:
    """Synthetic clips from real sub-fingerprints (see the module's docstring)."""

    def __init__(self, rows: list[dict[str, Any]], seed: int = 0) -> None:
        real = [np.asarray(r["fp"], np.uint32) for r in rows]
        real = [p for p in real if len(p) and (p == 0).mean() < 0.5]  # digital silence carries nothing
        self.ring = np.concatenate([p[p != 0] for p in real])
        self.lengths = np.clip([len(p) for p in real], MIN_OVERLAP_HOPS, 625)
        self.embeddings = [np.asarray(r["emb"], np.float32) for r in rows if r.get("emb")]
        self.rng = np.random.default_rng(seed)

    def clip(self, hops: int) -> np.ndarray:
        out = np.zeros(hops, np.uint32)
        t = np.arange(hops)
        for g in range(8):
            mask = np.uint32(0xF << (4 * g))
            out |= self.ring[(self.rng.integers(len(self.ring)) + t) % len(self.ring)] & mask
        return out

    def twin(self, clip: np.ndarray, bit_error: float) -> np.ndarray:
        """A crop of ``clip`` (>= 125 hops, up to 150 unrelated hops each side), bits flipped."""
        keep = int(self.rng.integers(MIN_OVERLAP_HOPS + 10, len(clip) + 1)) if len(clip) > 135 else len(clip)
        start = int(self.rng.integers(0, len(clip) - keep + 1))
        flips = self.rng.random((keep, 32)) < bit_error
        mask = (flips.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype(np.uint32)
        before, after = (self.clip(int(self.rng.integers(0, 151))) for _ in range(2))
        return np.concatenate([before, clip[start : start + keep] ^ mask, after])

    def make(
        self, clips: int, twin_share: float = 0.1, near_share: float = 0.2
    ) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], float]]:
        """``clips`` fingerprints (clip id -> uint32 array) of which ``twin_share`` are planted twins
        (``near_share`` of those near the threshold), and the planted pairs (a, b), a < b -> target
        bit error."""
        twins = int(clips * twin_share)
        prints = {f"c{i:07d}": self.clip(int(self.rng.choice(self.lengths))) for i in range(clips - twins)}
        planted: dict[tuple[str, str], float] = {}
        originals = list(prints)
        copies: dict[str, list[str]] = {}
        for i in range(twins):
            source = originals[int(self.rng.integers(len(originals)))]
            band = NEAR_THRESHOLD if self.rng.random() < near_share else REALISTIC
            target = float(self.rng.uniform(*band))
            name = f"t{i:07d}"
            prints[name] = self.twin(prints[source], target)
            for other in [source, *copies.get(source, [])]:  # two copies of one clip are twins too
                planted[min(other, name), max(other, name)] = target
            copies.setdefault(source, []).append(name)
        return prints, planted


def exact_pairs(prints: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
    """Every pair aligned with best_match: (a, b) -> bit error, for those under the threshold."""
    ids = sorted(prints)
    found = {}
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            match = best_match(prints[a], prints[b], MIN_OVERLAP_HOPS)
            if match is not None and match.bit_error < THRESHOLD:
                found[a, b] = match.bit_error
    return found


def index_pairs(prints: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
    """The pairs the index finds and best_match confirms: (a, b) -> bit error."""
    candidates = near_index.search([], [], prints)
    table = align(candidates, prints)
    return {
        (a, b): e
        for a, b, e in zip(
            *(table.column(c).to_pylist() for c in ("clip_a", "clip_b", "bit_error")), strict=True
        )
        if e is not None and e < THRESHOLD
    }


def old_method(prints: dict[str, np.ndarray], embeddings: dict[str, np.ndarray]) -> tuple[int, float]:
    """The replaced search: cosine of embeddings over every pair, alignment of those >= 0.8.
    Returns (candidates, seconds)."""
    started = time.perf_counter()
    ids = sorted(prints)
    emb = np.stack([embeddings[i] for i in ids])
    close = np.argwhere(np.triu(emb @ emb.T, k=1) >= OLD_COSINE)
    for p, q in close:
        best_match(prints[ids[p]], prints[ids[q]], MIN_OVERLAP_HOPS)
    return len(close), time.perf_counter() - started


def reference(
    prints: dict[str, np.ndarray], planted: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """The planted pairs that exact alignment puts under the threshold: (a, b) -> bit error."""
    out = {}
    for a, b in planted:
        match = best_match(prints[a], prints[b], MIN_OVERLAP_HOPS)
        if match is not None and match.bit_error < THRESHOLD:
            out[a, b] = match.bit_error
    return out


def recall_by_band(found: set[tuple[str, str]], ref: dict[tuple[str, str], float]) -> dict[str, Any]:
    """Recall overall and per band of measured bit error."""
    out: dict[str, Any] = {"pairs": len(ref), "recall": len(found & set(ref)) / max(len(ref), 1)}
    for lo, hi in ((0.0, 0.1), (0.1, 0.2), (0.2, 0.25), (0.25, 0.3), (0.3, THRESHOLD)):
        band = {p for p, e in ref.items() if lo <= e < hi}
        out[f"{lo:.2f}-{hi:.2f}"] = [len(found & band), len(band)]
    return out


def chance_rate(prints: list[np.ndarray]) -> float:
    """Probability that two hops of different clips share a key of table 0."""
    keys, clip, _ = near_index.hop_keys(prints)
    _, counts = np.unique(keys[0], return_counts=True)
    same = sum(
        float((np.unique(keys[0][clip == c], return_counts=True)[1] ** 2.0).sum()) for c in range(len(prints))
    )
    n = keys.shape[1]
    within = sum(float(np.sum(clip == c)) ** 2 for c in range(len(prints)))
    return (float((counts**2.0).sum()) - same) / (n * n - within)


def incremental(prints: dict[str, np.ndarray], work: Path) -> dict[str, Any]:
    """A stored index: 90% of the clips indexed, then the rest added, against one full build."""
    ids = sorted(prints)
    fetch = lambda wanted: {c: prints[c] for c in wanted}  # noqa: E731
    first, rest = ids[: len(ids) * 9 // 10], ids
    grown = DatasetRoot(work / "grown")
    started = time.perf_counter()
    update(grown, first, fetch, "first")
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    added = update(grown, rest, fetch, "second")
    add_s = time.perf_counter() - started
    whole = DatasetRoot(work / "whole")
    started = time.perf_counter()
    full = update(whole, rest, fetch, "all")
    full_s = time.perf_counter() - started
    return {
        "clips": len(ids),
        "index_90pct_s": round(first_s, 2),
        "add_10pct_s": round(add_s, 2),
        "full_rebuild_s": round(full_s, 2),
        "add_over_rebuild": round(add_s / full_s, 3),
        "clips_indexed_by_the_update": added.indexed,
        "pairs_equal": added.pairs == full.pairs,
        "pairs": len(full.pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", nargs="+", default=list(SOURCES))
    parser.add_argument(
        "--audio", nargs="+", default=[], help="media files fingerprinted here, beside the sources' clips"
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[2000, 20000, 200000])
    parser.add_argument("--exact", type=int, default=1000, help="clips of the exact all-pairs check")
    parser.add_argument("--old", type=int, default=2000, help="clips of the old-method baseline")
    parser.add_argument("--incremental", type=int, default=20000)
    parser.add_argument("--memory-mb", type=float, default=near_index.MEMORY_MB, help="the count's budget")
    parser.add_argument(
        "--workers", type=int, default=0, help="Ray workers for the count (0: this process alone)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    map_fn: Any = ray_map(RayConfig(workers=args.workers)) if args.workers else map
    rows = real_rows(args.source) + audio_rows(args.audio)
    corpus = Corpus(rows)
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "real_clips": len(rows),
        "real_hops": len(corpus.ring),
        "fixture_twin": fixture_twin(rows),
        "memory_mb": args.memory_mb,
        "workers": args.workers,
        "params": {
            "bits": near_index.BITS,
            "span_hops": near_index.SPAN_HOPS,
            "tables": near_index.TABLES,
            "min_votes": near_count.MIN_VOTES,
            "max_bucket": near_count.MAX_BUCKET,
        },
    }
    real = [p for p in (np.asarray(r["fp"], np.uint32) for r in rows) if len(p) >= MIN_OVERLAP_HOPS]
    synthetic, _ = corpus.make(len(real), twin_share=0.0)
    out["chance_key_collision"] = {
        "real": chance_rate(real),
        "synthetic": chance_rate(list(synthetic.values())),
    }
    print(json.dumps(out, indent=1), flush=True)

    prints, planted = corpus.make(args.exact)
    started = time.perf_counter()
    exact = exact_pairs(prints)
    exact_s = time.perf_counter() - started
    found = index_pairs(prints)
    out["exact"] = {
        "clips": args.exact,
        "exact_s": round(exact_s, 1),
        "exact_pairs": len(exact),
        "exact_pairs_all_planted": set(exact) <= set(planted),
        "planted_under_threshold": len(reference(prints, planted)),
        "index_recall_vs_exact": recall_by_band(set(found), exact),
        "index_pairs_not_exact": len(set(found) - set(exact)),
    }
    print(json.dumps(out["exact"], indent=1), flush=True)

    out["sizes"] = []
    for size in args.sizes:
        prints, planted = corpus.make(size)
        hops = sum(len(p) for p in prints.values())
        before_mb = tree_rss_mb()
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="near-spill-") as spill, Peak(Path(spill)) as peak:
            candidates = near_index.search(
                [], [], prints, memory_mb=args.memory_mb, map_fn=map_fn, spill=Path(spill)
            )
        search_s = time.perf_counter() - started
        started = time.perf_counter()
        table = align(candidates, prints)
        align_s = time.perf_counter() - started
        errors = dict(
            zip(
                zip(table.column("clip_a").to_pylist(), table.column("clip_b").to_pylist(), strict=True),
                table.column("bit_error").to_pylist(),
                strict=True,
            )
        )
        found_set = {p for p, e in errors.items() if e is not None and e < THRESHOLD}
        entry: dict[str, Any] = {
            "clips": size,
            "hops": hops,
            "search_s": round(search_s, 2),
            "align_s": round(align_s, 2),
            "total_s": round(search_s + align_s, 2),
            "candidates": len(candidates),
            "peak_rss_mb": round(peak.rss_mb),
            "rss_before_mb": round(before_mb),
            "peak_spill_mb": round(peak.folder_mb),
            "recall_vs_planted": recall_by_band(found_set, reference(prints, planted)),
        }
        if size <= args.old:
            embeddings = {
                c: corpus.embeddings[int(corpus.rng.integers(len(corpus.embeddings)))] for c in prints
            }
            entry["old_candidates"], entry["old_s"] = old_method(prints, embeddings)
            entry["old_over_index"] = round(entry["old_s"] / entry["total_s"], 1)
        out["sizes"].append(entry)
        print(json.dumps(entry), flush=True)
    sizes = out["sizes"]
    out["growth_per_10x"] = [
        round((b["total_s"] / a["total_s"]) ** (1 / np.log10(b["clips"] / a["clips"])), 1)
        for a, b in itertools.pairwise(sizes)
    ]
    if args.incremental:
        prints, _ = corpus.make(args.incremental)
        with tempfile.TemporaryDirectory() as work:
            out["incremental"] = incremental(prints, Path(work))
        print(json.dumps(out["incremental"]), flush=True)
    print(json.dumps({"growth_per_10x": out["growth_per_10x"]}))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
