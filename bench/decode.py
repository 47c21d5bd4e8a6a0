"""Sparse frame access: PyAV (what the project uses) against decord, on the fixtures.

    python -m bench.decode [--frames 16] [--json F]

For each fixture video, ``--frames`` evenly spaced times of its 30 fps grid (what the emotion and
quality extractors, the report and review media sample), as RGB arrays:

- PyAV: ``ingest.media.iter_frames_at_rate(..., only=...)``: decode the span once, convert only
  the chosen frames (the latest source frame at or before each time, turned upright);
- decord: ``VideoReader.get_batch`` of the source frames at those times (from
  ``get_frame_timestamp``), which seeks to key frames and decodes from there.

Best of three, per video and in all, with the two results compared pixel by pixel (mean absolute
difference, 0..255) and the frame shapes (decord does not apply a display rotation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from ingest.media import frame_grid, iter_frames_at_rate
from ingest.probe import probe

FIXTURES = Path(
    os.environ.get("CURATE_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)


def best_of(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def with_pyav(path: Path, duration_s: float, wanted: list[int]) -> list[np.ndarray]:
    return [f.image for f in iter_frames_at_rate(path, 0.0, duration_s, 30.0, only=set(wanted))]


def with_decord(path: Path, times: list[float]) -> list[np.ndarray]:
    import decord

    reader = decord.VideoReader(str(path))
    starts = reader.get_frame_timestamp(range(len(reader)))[:, 0]
    index = [max(int(np.searchsorted(starts, t + 1e-6, side="right")) - 1, 0) for t in times]
    return list(reader.get_batch(index).asnumpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for path in sorted((FIXTURES / "video").iterdir()):
        duration = float(probe(path).facts["duration_s"])
        grid = frame_grid(0.0, duration, 30.0)
        wanted = sorted({int(i) for i in np.linspace(0, len(grid) - 1, args.frames).round()})
        pyav_s, ours = best_of(lambda p=path, d=duration, w=wanted: with_pyav(p, d, w))
        times = [float(grid[i]) for i in wanted]
        decord_s, theirs = best_of(lambda p=path, t=times: with_decord(p, t))
        same_shape = [a.shape == b.shape for a, b in zip(ours, theirs, strict=False)]
        diff = [
            float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
            for a, b in zip(ours, theirs, strict=False)
            if a.shape == b.shape
        ]
        rows.append(
            {
                "video": path.name,
                "duration_s": duration,
                "frames": len(wanted),
                "pyav_ms": 1000 * pyav_s,
                "decord_ms": 1000 * decord_s,
                "decord_over_pyav": decord_s / pyav_s,
                "same_shape": all(same_shape) and len(ours) == len(theirs),
                "mean_abs_diff": float(np.mean(diff)) if diff else None,
            }
        )
        print(json.dumps(rows[-1]))
    total = {k: sum(r[k] for r in rows) for k in ("pyav_ms", "decord_ms")}
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "videos": rows,
        "total": total | {"decord_over_pyav": total["decord_ms"] / total["pyav_ms"]},
    }
    text = json.dumps(figures, indent=2)
    print(json.dumps(figures["total"]))
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
