"""Speaker-relative emotion cues: does judging a clip against its own speaker's other clips help
on speakers never seen? Measured, not yet in the labels ``curate run`` writes (docs/scores.md).

    python -m bench.emotion_speaker ROOT --test-speakers docs/pool/emotion_test.csv [--json F]

``ROOT``: a dataset root of labelled clips (``curate run docs/pool/emotion_train.csv
docs/pool/emotion_test.csv`` with the face and emotion extractors); a clip's label and speaker
are read as ``curate emotion eval`` reads them. The test speakers are the ``speaker_id`` values of
``--test-speakers``; every other speaker is a training speaker.

The normalisation: per speaker with ``n`` clips, the mean of its clips' face-model log
probabilities and of their median blendshapes is moved onto the training clips' mean, by a share
``(n - 1) / (n - 1 + K)`` (a speaker with one clip is left as it is; ``K`` shrinks the estimate
of a speaker's own mean from few clips). Acted corpora give each actor every class, so an actor's
mean is their own neutral-ish face plus the average expression; the cue then reads what departs
from it. The fusion (:func:`extractors.emotion_fusion.fit`) is refitted on the normalised cues.

``K`` is chosen by leaving each training speaker out in turn (top-1, then coverage times
precision at ``[emotion] min_confidence`` 0.6); the test speakers are then judged once, by the
fusion fitted on every training speaker, and reported as they come out, with the
unnormalised fusion (the shipped recipe) beside them.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from extractors.emotion_fusion import face_log_probs, fit
from extractors.emotion_training import EmotionEval, LabelledClip, figures, labelled_clips

FACE_MODEL = "expression-facex"
MIN_CONFIDENCE = 0.6
SHRINKS = (None, 1.0, 2.0, 4.0, 8.0, 16.0)  # None: no normalisation (the shipped recipe)


def cues(clips: Sequence[LabelledClip]) -> tuple[np.ndarray, np.ndarray]:
    """(face log probabilities (n, 7), median blendshapes (n, 52)) of ``clips``; a clip the face
    model did not read gets the uniform distribution."""
    uniform = np.full(7, 1 / 7)
    faces = np.array([c.face_probs if c.face_probs is not None else uniform for c in clips])
    return face_log_probs(faces), np.array([c.median for c in clips])


def speaker_relative(
    clips: Sequence[LabelledClip], ref: tuple[np.ndarray, np.ndarray], shrink: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cues` with each speaker's mean moved onto ``ref`` (means (7,), (52,)) by the share
    ``(n - 1) / (n - 1 + shrink)``; ``shrink`` None: unchanged."""
    logs, medians = cues(clips)
    if shrink is None:
        return logs, medians
    speakers = np.array([c.speaker for c in clips])
    for speaker in set(speakers):
        mine = speakers == speaker
        share = (mine.sum() - 1) / (mine.sum() - 1 + shrink)
        logs[mine] -= share * (logs[mine].mean(axis=0) - ref[0])
        medians[mine] -= share * (medians[mine].mean(axis=0) - ref[1])
    return logs, medians


def judged(
    train: Sequence[LabelledClip], test: Sequence[LabelledClip], shrink: float | None
) -> dict[str, np.ndarray]:
    """Class probabilities (n_test, 7) of each cue for ``test`` by a fusion fitted on ``train``."""
    train_logs, train_medians = cues(train)
    ref = (train_logs.mean(axis=0), train_medians.mean(axis=0))
    logs, medians = speaker_relative(train, ref, shrink)
    model = fit(medians, logs, np.array([c.label for c in train]), FACE_MODEL)
    test_logs, test_medians = speaker_relative(test, ref, shrink)
    face = np.exp(test_logs)
    return {
        "face model": face / face.sum(axis=1, keepdims=True),
        "blendshapes": model.blendshape_probs(test_medians),
        "fused": model.probs(test_logs, test_medians),
    }


def each_speaker_held_out(clips: Sequence[LabelledClip], shrink: float | None) -> EmotionEval:
    held: list[LabelledClip] = []
    parts = []
    for speaker in sorted({c.speaker for c in clips}):
        held += [c for c in clips if c.speaker == speaker]
        parts.append(
            judged(
                [c for c in clips if c.speaker != speaker], [c for c in clips if c.speaker == speaker], shrink
            )
        )
    return figures(held, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, MIN_CONFIDENCE)


def summary(result: EmotionEval) -> dict[str, float | None]:
    fused = result.cues["fused"]
    return {
        "top1": round(fused.accuracy, 3),
        "neutral_auc": None if fused.neutral_auc is None else round(fused.neutral_auc, 3),
        "coverage": round(result.coverage, 3),
        "precision": None if result.precision is None else round(result.precision, 3),
        "face_top1": round(result.cues["face model"].accuracy, 3),
        "blendshapes_top1": round(result.cues["blendshapes"].accuracy, 3),
        "largest_absorbed": round(fused.largest_absorbed, 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--test-speakers", type=Path, required=True, help="CSV with a speaker_id column")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with open(args.test_speakers, newline="") as fh:
        test_speakers = {row["speaker_id"] for row in csv.DictReader(fh)}
    clips = labelled_clips(args.root)
    train = [c for c in clips if c.speaker not in test_speakers]
    test = [c for c in clips if c.speaker in test_speakers]
    print(f"{len(train)} training clips ({len({c.speaker for c in train})} speakers), {len(test)} test clips")
    loso = {k: summary(each_speaker_held_out(train, k)) for k in SHRINKS}
    for k, row in loso.items():
        print(f"  training, each speaker held out, K {k}: {row}")
    normalised = [k for k in SHRINKS if k is not None]
    chosen = max(
        normalised, key=lambda k: (loso[k]["top1"], (loso[k]["coverage"] or 0) * (loso[k]["precision"] or 0))
    )
    results = {
        "chosen_shrink": chosen,
        "train_each_speaker_held_out": {str(k): v for k, v in loso.items()},
        "test": {
            "shipped recipe": summary(figures(test, judged(train, test, None), MIN_CONFIDENCE)),
            f"speaker-relative, K {chosen:g}": summary(
                figures(test, judged(train, test, chosen), MIN_CONFIDENCE)
            ),
        },
        "clips": {"train": len(train), "test": len(test)},
    }
    for name, row in results["test"].items():
        print(f"  test speakers, {name}: {row}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
