"""Throughput benchmark of ``curate run``: every figure measured in the same run, printed as ratios.

    python -m bench.throughput [--minutes 2] [--json results.json]

Inputs: the speaking fixture videos, copied (remuxed, no re-encoding, distinct bytes so none is
skipped as a duplicate) until they hold at least ``--minutes`` of video. Measured:

- the pipeline with the sequential executor, and on a local Ray cluster with 1 worker (the
  whole cluster pinned to one core) and with 2 workers;
- the naive baseline (:mod:`bench.naive`: every extractor decoding the file itself) on one copy
  of each video;
- the bound (:mod:`bench.bound`): cores / isolated per-core cost of every extractor of the
  configuration, each measured alone on one core on one copy of each video with the pipeline's
  settings and media decoded once.

Speeds are seconds of video per wall second; wall time includes starting Ray and loading models.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from bench.bound import extractor_costs, pinned
from bench.media import distinct_copy, duration_s
from bench.naive import naive_seconds
from curate.run import run
from extractors.registry import make_config
from settings.config import Config, RayConfig, RunConfig

#: Fixture videos with one speaking face each (see the fixtures README).
SPEAKING = [
    "vr_face_3.mp4",
    "vr_face_5.mp4",
    "r3p_May_5s.mp4",
    "lp_driving_d20.mp4",
    "vr_face_1.mp4",
    "sadtalker_WDA_AOC_000.mp4",
    "geneface_zozo_radnerf.mp4",
]


def fixture_videos() -> list[Path]:
    folder = Path(
        os.environ.get("CURATE_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
    )
    return [folder / "video" / name for name in SPEAKING]


def make_inputs(videos: list[Path], folder: Path, min_seconds: float) -> list[Path]:
    """Distinct copies of ``videos``, round after round, until they last ``min_seconds`` (s)."""
    copies: list[Path] = []
    total, round_ = 0.0, 0
    while total < min_seconds:
        for video in videos:
            copies.append(
                distinct_copy(video, folder / f"r{round_}_{video.name}", tag=f"bench copy {round_}")
            )
            total += duration_s(video)
        round_ += 1
    return copies


def pipeline_run(inputs: list[Path], root: Path, config: Config) -> dict[str, float]:
    summary = run([str(p) for p in inputs], root, config, progress=False)
    assert summary.videos_processed == len(inputs), summary.to_text()
    return {
        "speed": summary.speed,
        "wall_s": summary.wall_seconds,
        "startup_s": summary.startup_seconds,
        "shutdown_s": summary.shutdown_seconds,
        "busy_share": summary.worker_busy_share,
        "speed_after_startup": summary.video_seconds / (summary.wall_seconds - summary.startup_seconds),
        "peak_worker_rss_mb": summary.worker_peak_rss_mb,
    }


def measure(minutes: float, work: Path) -> dict[str, Any]:
    videos = fixture_videos()
    inputs = make_inputs(videos, work / "inputs", minutes * 60)
    seconds = sum(duration_s(p) for p in inputs)
    sequential = make_config(run=RunConfig(executor="sequential"))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "inputs": len(inputs),
        "video_s": seconds,
        "sequential": pipeline_run(inputs, work / "seq", sequential),
    }
    with pinned({min(os.sched_getaffinity(0))}):  # Ray's processes inherit the pinning
        results["ray_1"] = pipeline_run(inputs, work / "ray1", make_config(ray=RayConfig(workers=1)))
    results["ray_2"] = pipeline_run(inputs, work / "ray2", make_config(ray=RayConfig(workers=2)))
    one_copy = sum(duration_s(p) for p in videos)
    results["naive"] = {"speed": one_copy / naive_seconds(videos, make_config())}
    costs = extractor_costs(videos, make_config())
    cores = len(os.sched_getaffinity(0))
    results["bound"] = {"core_s_per_video_s": costs, "cores": cores, "speed": cores / costs["total"]}
    return results


def report(r: dict[str, Any]) -> str:
    speed = {k: r[k]["speed"] for k in ("sequential", "ray_1", "ray_2", "naive", "bound")}
    costs = r["bound"]["core_s_per_video_s"]
    lines = [
        f"machine: {r['machine']}",
        f"inputs: {r['inputs']} videos, {r['video_s']:.0f} s of video",
        "seconds of video per wall second:",
        *(f"  {name:<11}{value:6.2f}" for name, value in speed.items()),
        f"  bound = {r['bound']['cores']} cores / {costs['total']:.3f} core-s per video-s:",
        *(f"    {name:<13}{value:.3f}" for name, value in costs.items() if name != "total"),
        "ratios:",
        f"  ray 2 workers / 1 worker   {speed['ray_2'] / speed['ray_1']:.2f}   (target >= 1.8)",
        f"  pipeline / bound           {speed['ray_2'] / speed['bound']:.2f}   (target >= 0.85)",
        f"  pipeline / naive           {speed['ray_2'] / speed['naive']:.2f}   (target >= 3)",
        f"  ray 2 workers / sequential {speed['ray_2'] / speed['sequential']:.2f}",
        "start and model loading (s): "
        + ", ".join(f"{k} {r[k]['startup_s']:.1f}" for k in ("sequential", "ray_1", "ray_2")),
        "speed after it: "
        + ", ".join(f"{k} {r[k]['speed_after_startup']:.2f}" for k in ("sequential", "ray_1", "ray_2"))
        + f"; ray 2 / ray 1 {r['ray_2']['speed_after_startup'] / r['ray_1']['speed_after_startup']:.2f}",
        "stopping (s): "
        + ", ".join(f"{k} {r[k]['shutdown_s']:.1f}" for k in ("sequential", "ray_1", "ray_2")),
        "workers busy between start-up and stop: "
        + ", ".join(f"{k} {r[k]['busy_share']:.0%}" for k in ("ray_1", "ray_2")),
        "peak memory per worker (MiB): "
        + ", ".join(f"{k} {r[k]['peak_worker_rss_mb']:.0f}" for k in ("sequential", "ray_1", "ray_2")),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=2.0, help="minutes of video to process (>= 2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as work:
        results = measure(args.minutes, Path(work))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
