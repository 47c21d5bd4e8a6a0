"""A root of millions of clips: files, compaction, filter, count by verdict and export, against
the per-clip layout in the same run.

    python -m bench.scale --source ROOT [--clips 100000 1000000] [--per-clip 10000]
                          [--export 10000] [--json F]

A synthetic root per size, built from the real rows of a run (``--source``, e.g. the
quickstart's root of the sample media): its clips rows copied round-robin with new ids (ten
clips per video) and every score perturbed by up to ±10%, committed as a run commits them
(batches of ``[run] batch_clips`` clips: a ``clips``, ``tracks`` and ``videos`` part and a
commit record each). The first ``--export`` clips get tracks rows (the real ones, with
fingerprints made from the real sub-fingerprints of ``--source`` and ``--prints-from`` roots as
:mod:`bench.near_duplicates` makes them; every hundredth a planted twin of the one before); the
others get none. Per size: files before and after
``curate compact``, the time to compact, the disk it takes, ``curate filter`` (judge every
clip, by parts on Ray workers, and the near-duplicate pass over the clips with tracks, append a
decision set) with the peak memory of its process tree, a count by verdict
through ``curate query``, and ``curate export`` of the ``--export`` clips on the Ray executor
(2 workers here). The same root in the per-clip layout (one part per clip per table, as runs
wrote before batches) is timed at ``--per-clip`` clips for filter and count, beside the batched
root of that size. Then the growth of each time from the smallest batched size to the largest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.near_duplicates import Corpus, real_rows
from bench.peak import Peak, folder_mb
from curate.filter import apply_filters
from curate.query import query
from curate.ray_executor import ray_map
from export.shards import ExportOptions, export
from extractors.registry import dataset_schemas, make_config
from filters.duplicates import MIN_OVERLAP_HOPS
from manifests.compact import compact
from manifests.store import DatasetRoot, write_parquet_atomic
from settings.config import RayConfig

CLIPS_PER_VIDEO = 10
TWIN_EVERY = 100  # every hundredth clip with tracks is a planted twin of the one before
FIXED = {"clip_index", "start_s", "end_s", "fps", "duration_s", "damaged_s"}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


class Synthetic:
    """Rows made from ``source``'s real rows: :meth:`chunk` gives clips, tracks and videos of clip
    numbers ``start .. stop`` as Arrow tables in the root's schemas."""

    def __init__(self, source: Path, with_tracks: int, prints_from: Sequence[str] = (), seed: int = 0):
        self.schemas = dataset_schemas()
        clips = query(source, "select c.* from clips c where cardinality(c.errors) = 0")
        self.clips = clips
        ids = pc.field("clip_id").isin(clips["clip_id"])
        self.tracks = query(source, "select * from tracks").filter(ids)
        by_id = {c: i for i, c in enumerate(self.tracks["clip_id"].to_pylist())}
        self.track_of = [by_id[c] for c in clips["clip_id"].to_pylist()]
        videos = query(source, "select * from videos")
        by_video = {v: i for i, v in enumerate(videos["video_id"].to_pylist())}
        self.videos = videos
        self.video_of = [by_video[v] for v in clips["video_id"].to_pylist()]
        self.with_tracks = with_tracks
        self.rng = np.random.default_rng(seed)
        self.corpus = Corpus(real_rows([str(source), *prints_from]), seed)
        self._last: np.ndarray | None = None  # the fingerprint made last, for a planted twin

    def chunk(self, start: int, stop: int) -> dict[str, pa.Table]:
        n = stop - start
        pick = np.arange(start, stop) % self.clips.num_rows
        clip_ids = [f"{i // CLIPS_PER_VIDEO:014x}_{i % CLIPS_PER_VIDEO:08d}" for i in range(start, stop)]
        video_ids = [f"{i // CLIPS_PER_VIDEO:014x}" for i in range(start, stop)]
        clips = self.clips.take(pick)
        for name in clips.schema.names:
            column = clips[name]
            if pa.types.is_floating(column.type) and name not in FIXED:
                noise = pa.array(self.rng.uniform(0.9, 1.1, n), column.type)
                clips = clips.set_column(clips.schema.get_field_index(name), name, pc.multiply(column, noise))
        clips = _with_ids(clips, clip_ids, video_ids)
        out = {"clips": clips}
        tracked = max(0, min(stop, self.with_tracks) - start)
        out["tracks"] = self._tracks(range(start, start + tracked), clip_ids, video_ids)
        firsts = [k for k, i in enumerate(range(start, stop)) if i % CLIPS_PER_VIDEO == 0]
        if firsts:
            videos = self.videos.take([self.video_of[pick[k]] for k in firsts])
            videos = videos.set_column(0, "video_id", pa.array([video_ids[k] for k in firsts]))
            n_clips = videos.schema.get_field_index("n_clips")
            out["videos"] = videos.set_column(
                n_clips, "n_clips", pa.array([CLIPS_PER_VIDEO] * len(firsts), pa.int32())
            )
        return out

    def _tracks(self, numbers: range, clip_ids: list[str], video_ids: list[str]) -> pa.Table:
        """Tracks rows of clips ``numbers`` (the first of ``clip_ids``): a real clip's, with a
        fingerprint of the same length made from real sub-fingerprints (:class:`Corpus`: copies
        of one real clip must not be the same recording). Every hundredth clip is a planted
        twin of the one before it (a crop with 10% of its bits flipped)."""
        if not numbers:
            return self.tracks.slice(0, 0)
        tracks = self.tracks.take([self.track_of[i % self.clips.num_rows] for i in numbers])
        prints = []
        for i, fp in zip(numbers, tracks["audio_fingerprint"].to_pylist(), strict=True):
            if i % TWIN_EVERY == 1 and self._last is not None:
                made = self.corpus.twin(self._last, 0.1)
            else:
                made = self.corpus.clip(max(len(fp or []), MIN_OVERLAP_HOPS))
            prints.append(made.tolist())
            self._last = made
        index = tracks.schema.get_field_index("audio_fingerprint")
        tracks = tracks.set_column(
            index, "audio_fingerprint", pa.array(prints, tracks.schema.field(index).type)
        )
        return _with_ids(tracks, clip_ids[: len(numbers)], video_ids[: len(numbers)])


def _with_ids(table: pa.Table, clip_ids: list[str], video_ids: list[str]) -> pa.Table:
    table = table.set_column(table.schema.get_field_index("clip_id"), "clip_id", pa.array(clip_ids))
    return table.set_column(table.schema.get_field_index("video_id"), "video_id", pa.array(video_ids))


def build_batched(rows: Synthetic, folder: Path, clips: int, batch: int) -> float:
    """Commit ``clips`` clips in batches as a run does; seconds taken."""
    root = DatasetRoot(folder)
    started = time.perf_counter()
    for start in range(0, clips, batch):
        tables = {t: v for t, v in rows.chunk(start, min(start + batch, clips)).items() if v.num_rows}
        root.commit(tables)
    return time.perf_counter() - started


def build_per_clip(rows: Synthetic, folder: Path, clips: int) -> float:
    """Write ``clips`` clips one part per clip per table, the layout runs wrote before batches."""
    root = DatasetRoot(folder)
    started = time.perf_counter()
    for start in range(0, clips, 1000):
        chunk = rows.chunk(start, min(start + 1000, clips))
        for table, data in chunk.items():
            key_column = "video_id" if table == "videos" else "clip_id"
            for i, key in enumerate(data[key_column].to_pylist()):
                write_parquet_atomic(data.slice(i, 1), root.part_path(table, key))
    return time.perf_counter() - started


def files(folder: Path) -> dict[str, int]:
    return {t: len(list((folder / t).glob("part-*.parquet"))) for t in ("clips", "tracks", "videos")}


def judge_and_count(folder: Path, clips: int) -> dict[str, float]:
    """``curate filter`` (on Ray workers where the root has more than ``[filter] parts_per_job``
    clips parts) with its peak memory, the process tree's, and a count by verdict."""
    with Peak() as peak:
        summary, filter_s = _timed(lambda: apply_filters(folder, make_config()))
    sql = "select verdict, count(*) n from current_decisions group by verdict"
    counts, count_s = _timed(lambda: query(folder, sql).to_pylist())
    assert sum(r["n"] for r in counts) == clips == sum(summary.verdicts.values())
    return {
        "filter_s": filter_s,
        "filter_peak_mb": peak.rss_mb,
        "count_by_verdict_s": count_s,
        "accepted": summary.verdicts.get("accept", 0),
        "duplicates": summary.reasons.get("duplicate", 0),  # of the planted twins among clips with tracks
    }


def measure_batched(rows: Synthetic, work: Path, clips: int, batch: int, export_clips: int) -> dict[str, Any]:
    folder = work / f"batched-{clips}"
    write_s = build_batched(rows, folder, clips, batch)
    before = files(folder)
    _, compact_s = _timed(lambda: compact(folder, grace_s=0))
    after = files(folder)
    figures: dict[str, Any] = {
        "layout": "batched",
        "clips": clips,
        "write_s": write_s,
        "files_before_compaction": before,
        "compact_s": compact_s,
        "files_after_compaction": after,
        "files_per_1000_clips": {t: 1000 * n / clips for t, n in after.items()},
        "log_records": len(list((folder / "_log").iterdir())),
        "disk_mb": folder_mb(folder),
        **judge_and_count(folder, clips),
    }
    where = f"c.video_id < '{export_clips // CLIPS_PER_VIDEO:014x}'"
    options = ExportOptions(name="bench", where=where, val_fraction=0.1, test_fraction=0.1)
    summary, export_s = _timed(lambda: export(folder, options, map_fn=ray_map(RayConfig())))
    figures["export_clips"] = sum(s["clips"] for s in summary.splits.values())
    figures["export_s"] = export_s
    return figures


def measure_per_clip(rows: Synthetic, work: Path, clips: int) -> dict[str, Any]:
    folder = work / f"per-clip-{clips}"
    write_s = build_per_clip(rows, folder, clips)
    return {
        "layout": "per-clip",
        "clips": clips,
        "write_s": write_s,
        "files": files(folder),
        **judge_and_count(folder, clips),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a dataset root with real clips")
    parser.add_argument("--clips", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--prints-from", nargs="*", default=[], help="more roots to draw sub-fingerprints from"
    )
    parser.add_argument("--per-clip", type=int, default=10_000, help="clips of the per-clip baseline")
    parser.add_argument("--export", type=int, default=10_000, help="clips with tracks, exported")
    parser.add_argument("--batch", type=int, default=make_config().run.batch_clips, help="clips per batch")
    parser.add_argument("--work", type=Path, help="folder for the roots (default: a temporary one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = Synthetic(args.source, args.export, args.prints_from)
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.work) as work:
        results = [measure_per_clip(rows, Path(work), args.per_clip)]
        print(json.dumps(results[-1]), flush=True)
        for n in sorted({args.per_clip, *args.clips}):
            results.append(measure_batched(rows, Path(work), n, args.batch, min(args.export, n)))
            print(json.dumps(results[-1]), flush=True)
    batched = [r for r in results if r["layout"] == "batched"]
    same = next(r for r in batched if r["clips"] == args.per_clip)
    first, last = next(r for r in batched if r["clips"] in args.clips), batched[-1]
    keys = ("filter_s", "filter_peak_mb", "count_by_verdict_s", "compact_s", "export_s", "disk_mb")
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "results": results,
        "per_clip_over_batched": {k: results[0][k] / same[k] for k in ("filter_s", "count_by_verdict_s")},
        "growth": {"clips": last["clips"] / first["clips"], **{k: last[k] / first[k] for k in keys}},
    }
    print(json.dumps({k: figures[k] for k in ("per_clip_over_batched", "growth")}))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
