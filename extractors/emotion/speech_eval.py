"""The voice cue alone on a folder of labelled audio files (``curate emotion eval-speech``).

Labels come as the pool's ``labels.csv``: ``file`` (path under the folder), ``dataset``,
``speaker``, ``label``. Calm counts as neutral; a label that is none of the seven classes
(boredom) is left out and counted. Each file is read as the pipeline reads a clip's audio: its
speech found by voice activity detection and encoded (:mod:`extractors.speech.window`), the whole
file when none is found.

Per dataset, a file's prediction is the most probable of the classes that dataset's labels use
(URDU: angry, happy, neutral, sad), its probabilities renormalised over them; ``top1_7`` is the
plain 7-class argmax. ``coverage`` is the share of files whose (renormalised) top probability
reaches ``[emotion] min_confidence``, ``precision`` the top-1 of those.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extractors.emotion.fusion import EMOTION_CLASSES
from extractors.emotion.speech_model import restricted
from ingest.media import read_audio
from settings.config import Config
from settings.errors import InvalidInput

#: Labels of other corpora that are one of the seven classes under another name.
LABEL_MAP = {"calm": "neutral", "fearful": "fear", "surprised": "surprise", "anger": "angry"}
LABEL_COLUMNS = ("file", "dataset", "label")


@dataclass
class CorpusFigures:
    """The voice cue's figures on one dataset's files; ``confusion[i][j]``: files of class
    ``classes[i]`` predicted ``classes[j]``."""

    n: int
    top1: float
    uar: float
    coverage: float
    precision: float | None
    top1_7: float
    classes: list[str]
    confusion: list[list[int]]


@dataclass
class SpeechEval:
    min_confidence: float
    corpora: dict[str, CorpusFigures]
    left_out: dict[str, int] = field(default_factory=dict)  # "<dataset>/<label>" -> files

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: asdict(figures) for name, figures in self.corpora.items()}
        return out | {"_left_out": self.left_out, "_min_confidence": self.min_confidence}

    def to_text(self) -> str:
        def pct(x: float | None) -> str:
            return "  n/a" if x is None else f"{x:5.1%}"

        lines = [f"voice cue alone; labelled from confidence {self.min_confidence:.2f}"]
        for name, f in self.corpora.items():
            lines += [
                "",
                f"{name}: {f.n} files over {len(f.classes)} classes: top-1 {pct(f.top1)} (7-way {pct(f.top1_7)}), "
                f"UAR {pct(f.uar)}, coverage {pct(f.coverage)}, precision {pct(f.precision)}",
                "  true \\ predicted " + " ".join(f"{c[:8]:>8}" for c in f.classes),
            ]
            lines += [
                f"  {c:<17}" + " ".join(f"{v:8d}" for v in row)
                for c, row in zip(f.classes, f.confusion, strict=True)
            ]
        if self.left_out:
            lines += [
                "",
                "left out (no class of ours): "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.left_out.items())),
            ]
        return "\n".join(lines)


def read_speech_labels(path: Path) -> list[dict[str, str]]:
    """The rows of a labels CSV (``file``, ``dataset``, ``label``; ``speaker`` optional)."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path}: no column {', '.join(missing)} (needs {', '.join(LABEL_COLUMNS)})")
        return list(reader)


def corpus_figures(probs: np.ndarray, labels: Iterable[str], min_confidence: float) -> CorpusFigures:
    """Figures of 7-class ``probs`` (n, 7) against class names ``labels`` (n,), scored over the
    classes the labels use."""
    names = list(labels)
    classes = [c for c in EMOTION_CLASSES if c in set(names)]
    y = np.array([EMOTION_CLASSES.index(c) for c in names])
    scored = restricted(probs, [EMOTION_CLASSES.index(c) for c in classes])
    predicted = scored.argmax(axis=1)
    right = predicted == y
    covered = scored.max(axis=1) >= min_confidence
    index = {EMOTION_CLASSES.index(c): i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(y, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    return CorpusFigures(
        n=len(y),
        top1=float(right.mean()),
        uar=float(np.mean([right[y == c].mean() for c in index])),
        coverage=float(covered.mean()),
        precision=float(right[covered].mean()) if covered.any() else None,
        top1_7=float((probs.argmax(axis=1) == y).mean()),
        classes=classes,
        confusion=confusion.tolist(),
    )


def evaluate_speech(folder: Path, labels: Path, config: Config, progress: bool = True) -> SpeechEval:
    """The voice cue of ``config`` on the files ``labels`` lists under ``folder``."""
    from tqdm import tqdm

    from extractors.emotion.extractor import EmotionExtractor

    emotion = EmotionExtractor(config)
    cue = emotion.load_voice()
    rows, left_out = [], Counter[str]()
    for row in read_speech_labels(labels):
        label = LABEL_MAP.get(row["label"].strip().lower(), row["label"].strip().lower())
        if label in EMOTION_CLASSES:
            rows.append((row["dataset"], folder / row["file"], label))
        else:
            left_out[f"{row['dataset']}/{row['label']}"] += 1
    if not rows:
        raise InvalidInput(
            f"{labels}: no file with a label of the seven classes ({', '.join(EMOTION_CLASSES)})"
        )
    gone = [str(path) for _, path, _ in rows if not path.is_file()]
    if gone:
        raise InvalidInput(f"{len(gone)} labelled file(s) not found, e.g. {gone[0]}")
    by_corpus: dict[str, tuple[list[np.ndarray], list[str]]] = {}
    for dataset, path, label in tqdm(rows, desc="eval-speech", unit="file", disable=not progress):
        audio = read_audio(path)
        probs, _ = cue.probs(cue.encode(audio, whole_if_silent=True))
        if probs is None:  # under [emotion] voice_min_speech_s: no reading, scored as a uniform guess
            probs = np.full(len(EMOTION_CLASSES), 1.0 / len(EMOTION_CLASSES))
        found = by_corpus.setdefault(dataset, ([], []))
        found[0].append(probs)
        found[1].append(label)
    threshold = emotion.settings.min_confidence
    return SpeechEval(
        threshold,
        {name: corpus_figures(np.stack(p), y, threshold) for name, (p, y) in sorted(by_corpus.items())},
        dict(left_out),
    )
