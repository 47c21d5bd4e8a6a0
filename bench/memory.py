"""Streaming memory: peak memory of a worker on a 5-minute and a 20-minute video.

    python -m bench.memory [--json results.json]

The long videos repeat ``vr_face_3.mp4`` back to back (remuxed, no re-encoding). Both run on a
local Ray cluster with 2 workers and the extractors that look at frames (face, emotion,
quality): speech reads only each clip's audio, so the frame path (decode, shot detection,
landmarks, the face crops kept for emotion and quality) is where a video's length could show in
memory. Flat memory means the 20-minute peak is close to the 5-minute one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.media import concatenate
from bench.throughput import fixture_videos
from curate.run import run
from extractors.registry import make_config
from settings.config import RayConfig, RunConfig


def measure(work: Path) -> dict[str, Any]:
    source = next(p for p in fixture_videos() if p.name == "vr_face_3.mp4")
    config = make_config(run=RunConfig(extractors=["face", "emotion", "quality"]), ray=RayConfig(workers=2))
    results: dict[str, Any] = {}
    for minutes in (5, 20):
        video = concatenate(source, work / f"long_{minutes}min.mp4", minutes * 60)
        summary = run([str(video)], work / f"root_{minutes}", config, progress=False)
        results[f"{minutes}min"] = {
            "video_s": summary.video_seconds,
            "clips": summary.clips,
            "speed": summary.speed,
            "peak_worker_rss_mb": summary.worker_peak_rss_mb,
        }
    results["ratio_20_to_5"] = results["20min"]["peak_worker_rss_mb"] / results["5min"]["peak_worker_rss_mb"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as work:
        results = measure(Path(work))
    for key in ("5min", "20min"):
        r = results[key]
        print(
            f"{key:>6}: {r['video_s']:.0f} s of video, {r['clips']} clips, {r['speed']:.2f} s/s,"
            f" peak worker memory {r['peak_worker_rss_mb']:.0f} MiB"
        )
    print(f"peak worker memory 20 min / 5 min: {results['ratio_20_to_5']:.2f} (flat: close to 1)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
