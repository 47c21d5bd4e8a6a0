"""What the per-clip storage layout costs as a root grows (the baseline for batched parts).

    python -m bench.scale --source ROOT [--clips 3000 30000] [--json F]

A synthetic root per size, built from the real ``clips`` rows of a run (``--source``, e.g. the
quickstart's root of the sample media): rows copied round-robin with new ids, each score
perturbed, one video per clip, every row written as the pipeline writes it (one Parquet part
per clip in ``clips``, one per video in ``videos``; ``tracks`` left empty, so the
near-duplicate pass has nothing to align). Per size: the files, the seconds to write them, and
the time of ``curate filter`` (judge every clip, append a decision set) and of a count by
verdict through ``curate query``; then the growth of each time from the smallest size to the
largest, against the growth of the clip count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from curate.filter import apply_filters
from curate.query import query
from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot
from settings.config import Config


def synthetic_root(source: Path, folder: Path, clips: int, seed: int = 0) -> float:
    """Write ``clips`` clips (and as many videos) made from ``source``'s rows; seconds taken."""
    schemas = dataset_schemas()
    real = query(source, "select * from clips c where cardinality(c.errors) = 0").to_pylist()
    videos = {v["video_id"]: v for v in query(source, "select * from videos").to_pylist()}
    rng = np.random.default_rng(seed)
    root = DatasetRoot(folder)
    started = time.perf_counter()
    for i in range(clips):
        row = dict(real[i % len(real)])
        video = dict(videos[row["video_id"]])
        video_id = f"{i:016x}"
        video["video_id"] = video_id
        row["video_id"], row["clip_id"] = video_id, f"{video_id}_00000000_00010000"
        for name, value in row.items():
            if isinstance(value, float) and name not in ("start_s", "end_s", "fps", "duration_s"):
                row[name] = value * float(rng.uniform(0.9, 1.1))
        root.write_part("videos", video_id, [video], schemas["videos"])
        root.write_part("clips", row["clip_id"], [row], schemas["clips"])
    return time.perf_counter() - started


def measure(source: Path, clips: int, work: Path) -> dict[str, Any]:
    folder = work / f"root-{clips}"
    write_s = synthetic_root(source, folder, clips)
    files = sum(1 for _ in folder.rglob("*.parquet"))
    started = time.perf_counter()
    summary = apply_filters(folder, Config())
    filter_s = time.perf_counter() - started
    started = time.perf_counter()
    counts = query(folder, "select verdict, count(*) n from current_decisions group by verdict").to_pylist()
    count_s = time.perf_counter() - started
    assert sum(r["n"] for r in counts) == clips == sum(summary.verdicts.values())
    return {
        "clips": clips,
        "files": files,
        "files_per_1000_clips": 1000 * files / clips,
        "write_s": write_s,
        "filter_s": filter_s,
        "count_by_verdict_s": count_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a dataset root with real clips")
    parser.add_argument("--clips", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = sorted(args.clips)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        rows = []
        for n in sizes:
            rows.append(measure(args.source, n, Path(work)))
            print(json.dumps(rows[-1]), flush=True)
    first, last = rows[0], rows[-1]
    growth = {
        "clips": last["clips"] / first["clips"],
        **{k: last[k] / first[k] for k in ("write_s", "filter_s", "count_by_verdict_s")},
    }
    figures = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "sizes": rows, "growth": growth}
    print(json.dumps(growth))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
