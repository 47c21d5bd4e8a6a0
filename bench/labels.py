"""Label noise of MediaPipe's blendshapes, and what ``[face] mirror_average`` delivers, with its cost.

    python -m bench.labels [--json F]

On the speaking fixture clips, with ``mirror_average`` off and on:

- mirror inconsistency: against a left-to-right flipped copy of each (``bench.media.mirrored_copy``),
  the blendshapes of every frame against those of the flipped frame read back (left and right
  channels swapped), mean absolute difference per channel, over all 52 channels and over the gaze
  channels (eyeLook*);
- stability under re-encoding: against a copy at half the size and H.264 CRF 35
  (``bench.media.recompressed_copy``, a lossy re-upload), the mean absolute difference of each
  channel frame by frame: the channels least stable are listed;
- the face extractor's time per frame with it on, as a ratio to off, in the same run.

Averaging adds no lag (each frame is averaged with itself mirrored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.media import mirrored_copy, recompressed_copy
from extractors.base import ClipRef
from extractors.face.extractor import FaceConfig, FaceExtractor, mirror_inconsistency
from extractors.registry import make_config
from ingest.probe import probe
from manifests.schema import BLENDSHAPE_NAMES

FIXTURES = Path(
    os.environ.get("CURATE_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)
CLIPS = ("vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4")
GAZE = [i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith("eyeLook")]


def shapes_of(extractor: FaceExtractor, path: Path) -> np.ndarray:
    """(frames, 52) blendshapes of the whole file, NaN where no face."""
    duration = float(probe(path).facts["duration_s"])
    out = extractor.extract(ClipRef(path, "v", "c", 0.0, duration, 30.0, True), {})
    rows = [s if s is not None else [np.nan] * 52 for s in out.track["blendshapes"]]
    return np.asarray(rows, np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "clips": list(CLIPS),
    }
    with tempfile.TemporaryDirectory() as tmp:
        copies = [
            (
                FIXTURES / "video" / n,
                mirrored_copy(FIXTURES / "video" / n, Path(tmp) / "flipped" / n),
                recompressed_copy(FIXTURES / "video" / n, Path(tmp) / "recompressed" / n),
            )
            for n in CLIPS
        ]
        for average in (False, True):
            extractor = FaceExtractor(make_config(face=FaceConfig(mirror_average=average)))
            extractor.setup()
            per_channel, drift, frames, spent = [], [], 0, 0.0
            for original, flipped, recompressed in copies:
                started = time.perf_counter()
                a, b = shapes_of(extractor, original), shapes_of(extractor, flipped)
                spent += time.perf_counter() - started
                frames += len(a) + len(b)
                n = min(len(a), len(b))
                per_channel.append(mirror_inconsistency(a[:n], b[:n]))
                c = shapes_of(extractor, recompressed)
                n = min(len(a), len(c))
                drift.append(np.nanmean(np.abs(a[:n] - c[:n]), axis=0))
            extractor.close()
            key = "mirror_average" if average else "raw"
            channels = np.mean(per_channel, axis=0)
            figures[f"{key}_all_channels"] = float(channels.mean())
            figures[f"{key}_gaze_channels"] = float(channels[GAZE].mean())
            figures[f"{key}_per_clip"] = [float(c.mean()) for c in per_channel]
            figures[f"{key}_ms_per_frame"] = 1000 * spent / frames
            reencoding = np.mean(drift, axis=0)
            figures[f"{key}_reencoding_all_channels"] = float(reencoding.mean())
            worst = np.argsort(-reencoding)[:8]
            figures[f"{key}_reencoding_least_stable"] = {
                BLENDSHAPE_NAMES[i]: round(float(reencoding[i]), 4) for i in worst
            }
    figures["cost_ratio"] = figures["mirror_average_ms_per_frame"] / figures["raw_ms_per_frame"]  # type: ignore[operator]
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
