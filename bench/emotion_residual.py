"""The residual cue of emotion (issue 24): does taking out what speech predicts change the
blendshape cue's labels?

    python -m bench.emotion_residual ROOT RUN [--json F]

``ROOT``: a dataset root of labelled clips with audio (``curate run docs/pool/emotion_train.csv
docs/pool/emotion_test.csv`` with the face and emotion extractors; labels as ``curate emotion
eval`` reads them). ``RUN``: a generator run (``curate train``) trained on other speakers' speech;
it predicts each clip's speech-driven motion from the clip's audio.

For every labelled clip with audio, the residual is the observed blendshapes minus the predicted
motion, frame by frame; the blendshape cue and the fused labels of the shipped fusion
(``emotion-fusion``) are computed from the clip median of the raw track and of the residual.
Printed per clip: the label, both cues' classes, and how far the residual moves the median, as a
share of the median's departure from the fusion's neutral face (0: speech explains nothing the
median holds).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from extractors.emotion.fusion import EMOTION_CLASSES, EmotionFusion, face_log_probs, face_median
from extractors.emotion.training import labelled_clips
from extractors.registry import dataset_schemas, model_spec
from generator.checkpoint import load_checkpoint
from generator.features import load_frame_features
from ingest.media import read_audio
from manifests.schema import BLENDSHAPE_NAMES
from manifests.store import DatasetRoot
from manifests.views import connect
from settings.models import resolve


def speech_motion(run: Path) -> Callable[[np.ndarray, int], np.ndarray]:
    """A function (audio 16 kHz (n,), n_frames) -> predicted speech-driven motion (n_frames, 52)
    of the generator in ``run`` on its default neutral (channels it does not predict stay 0)."""
    trained = load_checkpoint(run, torch.device("cpu"))
    features = load_frame_features(trained.config.model.features)
    columns = [BLENDSHAPE_NAMES.index(n) for n in trained.names]

    @torch.no_grad()
    def motion(audio: np.ndarray, n_frames: int) -> np.ndarray:
        rows = torch.from_numpy(features(audio, trained.fps, n_frames))[None]
        out = np.zeros((n_frames, len(BLENDSHAPE_NAMES)))
        out[:, columns] = trained.model(rows)[0].numpy()
        return out

    return motion


def labels(fusion: EmotionFusion, face_log: np.ndarray, median: np.ndarray) -> tuple[str, str]:
    """The classes of the blendshape cue and of the fused labels for a clip median (52,) and the
    face model's log probabilities (1, 7)."""
    cue = fusion.blendshape_probs(median[None])[0]
    fused = fusion.probs(face_log, median[None])[0]
    return EMOTION_CLASSES[int(cue.argmax())], EMOTION_CLASSES[int(fused.argmax())]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("run", type=Path, help="a generator run directory (curate train)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    fusion = EmotionFusion.load(resolve(model_spec("emotion-fusion")))
    motion = speech_motion(args.run)
    con = connect(DatasetRoot(args.root), dataset_schemas())
    media = {
        clip_id: (uri, start, end, frames)
        for clip_id, uri, start, end, frames in con.sql(
            """select c.clip_id, v.uri, c.start_s, c.end_s, t.blendshapes
               from clips c join videos v using (video_id) join tracks t using (clip_id)
               where v.has_audio"""
        ).fetchall()
    }
    rows: list[dict[str, Any]] = []
    for clip in labelled_clips(args.root):
        if clip.clip_id not in media or clip.face_probs is None:
            continue
        uri, start, end, frames = media[clip.clip_id]
        speech = motion(read_audio(Path(uri), start, end), len(frames))
        residual = face_median(
            [None if f is None else np.asarray(f) - m for f, m in zip(frames, speech, strict=True)]
        )
        assert residual is not None  # the clip has a face track (labelled_clips)
        face_log = face_log_probs(clip.face_probs[None])
        departure = np.linalg.norm(clip.median - fusion.neutral)
        rows.append({
            "clip": clip.name, "speaker": clip.speaker, "label": EMOTION_CLASSES[clip.label],
            "raw": labels(fusion, face_log, clip.median), "residual": labels(fusion, face_log, residual),
            "median_shift": round(float(np.linalg.norm(clip.median - residual) / departure), 4),
        })  # fmt: skip
    if not rows:
        raise SystemExit(f"{args.root} has no labelled clip with audio and a face-model reading")
    summary = {
        kind: {
            cue: sum(r[kind][i] == r["label"] for r in rows) for i, cue in enumerate(("blendshapes", "fused"))
        }
        for kind in ("raw", "residual")
    }
    for r in rows:
        print(f"{r['clip']:<48} {r['label']:<9} raw {'/'.join(r['raw']):<18} "
              f"residual {'/'.join(r['residual']):<18} shift {r['median_shift']:.3f}")  # fmt: skip
    print(f"right of {len(rows)} (blendshape cue, fused): {json.dumps(summary)}")
    print(f"labels changed by the residual: {sum(r['raw'] != r['residual'] for r in rows)} of {len(rows)}")
    if args.json:
        args.json.write_text(json.dumps({"clips": rows, "right": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
