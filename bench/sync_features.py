"""Cost of the sync model's audio features and of one calibrated score, on one CPU thread.

    python -m bench.sync_features [--json F]

On the speaking fixture clips (their own audio and face tracks, read from a sequential run made
here): milliseconds per second of audio for each feature set of ``curate sync train
--features``, as a ratio against log-mel measured in the same run, and the cost of scoring one
clip with the shipped model (prediction, the curve over ±15 shifts, and the null of 64 foreign
recordings).
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

from curate.query import query
from curate.run import run
from extractors.registry import make_config, model_spec
from extractors.sync.extractor import FEATURE_CHOICES, SyncModel, feature_maker, score
from ingest.media import read_audio
from settings.config import RunConfig
from settings.models import resolve

FIXTURES = Path(
    os.environ.get("CURATE_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)
CLIPS = ("vr_face_1.mp4", "vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "lp_driving_d20.mp4")


def _best_of(repeats: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(run=RunConfig(extractors=["face"], executor="sequential"))
        run([str(FIXTURES / "video" / n) for n in CLIPS], tmp, config, progress=False)
        rows = query(
            tmp,
            "select v.uri, c.start_s, c.end_s, t.blendshapes from clips c join videos v using (video_id)"
            " join tracks t using (clip_id)",
        ).to_pylist()
    clips = [(read_audio(Path(r["uri"]), r["start_s"], r["end_s"]), r["blendshapes"]) for r in rows]
    seconds = sum(len(a) for a, _ in clips) / 16_000
    figures: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "audio_s": seconds,
    }
    for name, settings in FEATURE_CHOICES.items():
        make = feature_maker(settings, make_config().models)
        make(clips[0][0], 30.0, len(clips[0][1]))  # load and warm up
        spent = _best_of(3, lambda make=make: [make(a, 30.0, len(b)) for a, b in clips])
        figures[f"{name}_ms_per_s"] = 1000 * spent / seconds
    for name in FEATURE_CHOICES:
        figures[f"{name}_vs_log_mel"] = figures[f"{name}_ms_per_s"] / figures["log-mel_ms_per_s"]  # type: ignore[operator]
    model = SyncModel.load(resolve(model_spec("sync-default")))
    make = feature_maker(model.features, make_config().models)
    inputs = [model.predict(make(a, 30.0, len(b))) for a, b in clips]
    spent = _best_of(
        3, lambda: [score(model, p, b, 15, 2.0) for p, (_, b) in zip(inputs, clips, strict=True)]
    )
    figures["score_ms_per_clip"] = 1000 * spent / len(clips)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
