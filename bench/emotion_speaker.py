"""Speaker-relative emotion labels (:mod:`extractors.emotion.speaker`): does judging a clip
against its own speaker's other clips help on speakers never seen, and at which shrink?

    python -m bench.emotion_speaker ROOT --test-speakers docs/pool/emotion_test.csv [--json F]

``ROOT``: a dataset root of labelled clips (``curate run docs/pool/emotion_train.csv
docs/pool/emotion_test.csv`` with the face and emotion extractors); labels and speakers are
read as ``curate emotion eval`` reads them. The test speakers are the ``speaker_id`` values of
``--test-speakers``; every other speaker is a training speaker.

``[emotion] speaker_shrink`` is chosen by leaving each training speaker out in turn (fusion
fitted on the others; top-1 of the speaker-relative labels, then their coverage times precision
at ``min_confidence`` 0.6). The test speakers are then judged once, by the fusion fitted on every
training speaker (the shipped one), and reported as they come out, beside the clip's own labels.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from extractors.emotion.training import (
    SPEAKER_RELATIVE,
    EmotionEval,
    evaluate,
    labelled_clips,
    leave_one_speaker_out,
    train,
)

FACE_MODEL = "expression-facex"
MIN_CONFIDENCE = 0.6
SHRINKS = (1.0, 2.0, 4.0, 8.0, 16.0)


def summary(result: EmotionEval) -> dict[str, Any]:
    """Top-1, neutral AUC and abstention of the clip's own labels and of the speaker-relative ones."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    own, relative = result.cues["fused"], result.cues[SPEAKER_RELATIVE]
    return {
        "own": {"top1": r(own.accuracy), "neutral_auc": r(own.neutral_auc), "coverage": r(result.coverage),
                "precision": r(result.precision), "largest_absorbed": r(own.largest_absorbed)},
        "speaker_relative": {"top1": r(relative.accuracy), "neutral_auc": r(relative.neutral_auc),
                             "coverage": r(result.speaker_coverage), "precision": r(result.speaker_precision),
                             "largest_absorbed": r(relative.largest_absorbed)},
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--test-speakers", type=Path, required=True, help="CSV with a speaker_id column")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with open(args.test_speakers, newline="") as fh:
        test_speakers = {row["speaker_id"] for row in csv.DictReader(fh)}
    clips = labelled_clips(args.root)
    training = [c for c in clips if c.speaker not in test_speakers]
    test = [c for c in clips if c.speaker in test_speakers]
    print(
        f"{len(training)} training clips ({len({c.speaker for c in training})} speakers), {len(test)} test clips"
    )
    loso = {k: summary(leave_one_speaker_out(training, FACE_MODEL, MIN_CONFIDENCE, k)) for k in SHRINKS}
    for k, row in loso.items():
        print(
            f"  training, each speaker held out, shrink {k:g}: {row['speaker_relative']} (own {row['own']})"
        )

    def rank(k: float) -> tuple[float, float]:
        rel = loso[k]["speaker_relative"]
        return rel["top1"], (rel["coverage"] or 0) * (rel["precision"] or 0)

    chosen = max(SHRINKS, key=rank)
    tested = summary(evaluate(test, train(training, FACE_MODEL), MIN_CONFIDENCE, chosen))
    print(f"  test speakers, shrink {chosen:g}: {tested['speaker_relative']} (own {tested['own']})")
    if args.json:
        results = {
            "clips": {"train": len(training), "test": len(test)},
            "chosen_shrink": chosen,
            "train_each_speaker_held_out": {f"{k:g}": v for k, v in loso.items()},
            "test": tested,
        }
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
