"""Fit and measure the emotion fusion on a dataset root of labelled clips (``curate emotion train``
and ``curate emotion eval``).

A clip's label comes, in this order, from a labels CSV (``file`` or ``uri``, and ``emotion``
columns), from the video's ``emotion`` source tag (a column of the list file ``curate run`` read),
or from its file name in the naming of MEAD (``..._happy_...``), RAVDESS (``03-01-04-...``: the
third field) or CREMA-D (``1001_DFA_ANG_XX``). Classes outside the seven (MEAD's contempt) are
left out; RAVDESS's calm counts as neutral. A clip's speaker is its ``speaker_id`` source tag,
else the actor in its file name, else its video.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extractors.emotion.fusion import (
    EMOTION_CLASSES,
    NEUTRAL,
    EmotionFusion,
    face_log_probs,
    face_median,
    fit,
)
from extractors.emotion.names import WORDS, label_from_name
from extractors.emotion.speaker import relative_probs, relative_voice, speaker_of
from extractors.emotion.voice import fuse
from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot
from manifests.views import connect
from settings.config import Config
from settings.errors import NothingToWorkOn

#: The cue name of the speaker-relative labels in the figures.
SPEAKER_RELATIVE = "speaker-relative"


def read_labels(path: Path) -> dict[str, str]:
    """File name -> class from a CSV with ``emotion`` and ``file`` (or ``uri``) columns."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "emotion" not in rows[0] or not ({"file", "uri"} & set(rows[0])):
        raise NothingToWorkOn(f"{path}: needs an emotion column and a file or uri column")
    return {Path(r.get("file") or r["uri"]).name: WORDS.get(r["emotion"].strip().lower(), "") for r in rows}


@dataclass(frozen=True)
class LabelledClip:
    clip_id: str
    name: str  # file name of the video
    speaker: str
    label: int  # index in EMOTION_CLASSES
    face_probs: np.ndarray | None  # (7,) the face model's distribution; None: not measured
    median: np.ndarray  # (52,) median blendshapes over the frames with a face
    group: str | None = None  # the speaker its speaker-relative label is judged with (emotion_speaker)
    voice_probs: np.ndarray | None = None  # (7,) the voice cue's distribution; None: no reading


@dataclass(frozen=True)
class VoiceFusion:
    """How the face side and the voice cue are fused (``[emotion] face_weight``, ``voice_weight``)
    and the voice model's reference log-probabilities (speaker-relative labels)."""

    face_weight: float
    voice_weight: float
    reference_log: np.ndarray


def labelled_clips(root: str | Path, labels: Path | None = None) -> list[LabelledClip]:
    """The root's clips that have a face track and a label among the seven classes."""
    given = read_labels(labels) if labels else {}
    con = connect(DatasetRoot(root), dataset_schemas())
    voice = "c.emotion_voice_probs" if "emotion_voice_probs" in con.table("clips").columns else "null"
    rows = (
        con.sql(
            f"""select c.clip_id, v.uri, v.video_id, v.source_tags, c.emotion_face_probs, t.blendshapes,
                       {voice} as voice_probs
                from clips c join videos v using (video_id) join tracks t using (clip_id)
                order by c.clip_id"""
        )
        .to_arrow_table()
        .to_pylist()
    )
    out = []
    for row in rows:
        tags = dict(row["source_tags"] or {})
        name = Path(row["uri"]).name
        named = label_from_name(name)[0]
        label = given.get(name) if labels else WORDS.get(tags.get("emotion", "").lower()) or named
        median = face_median(row["blendshapes"])
        if label not in EMOTION_CLASSES or median is None:
            continue
        probs, voice_probs = row["emotion_face_probs"], row["voice_probs"]
        group = speaker_of(row["uri"], tags)
        out.append(
            LabelledClip(
                row["clip_id"],
                name,
                group or row["video_id"],
                EMOTION_CLASSES.index(label),
                np.asarray(probs, np.float64) if probs is not None else None,
                median,
                group,
                np.asarray(voice_probs, np.float64) if voice_probs is not None else None,
            )
        )
    if not out:
        raise NothingToWorkOn(f"{root} has no clip with a face track and an emotion label")
    return out


def _face_probs(clips: Sequence[LabelledClip]) -> np.ndarray:
    """The face model's distribution of each clip, shape (n, 7); uniform (no evidence) where not measured."""
    uniform = np.full(len(EMOTION_CLASSES), 1 / len(EMOTION_CLASSES))
    return np.array([c.face_probs if c.face_probs is not None else uniform for c in clips])


def _medians(clips: Sequence[LabelledClip]) -> np.ndarray:
    return np.array([c.median for c in clips])


def train(clips: Sequence[LabelledClip], face_model: str) -> EmotionFusion:
    """The fusion fitted on ``clips`` (:func:`extractors.emotion.fusion.fit`)."""
    labels = np.array([c.label for c in clips])
    return fit(_medians(clips), face_log_probs(_face_probs(clips)), labels, face_model)


@dataclass
class CueFigures:
    """One cue's figures over the labelled clips."""

    accuracy: float  # top-1 over all clips
    neutral_auc: float | None  # neutral against emotional, scored by 1 - p(neutral)
    confusion: list[list[int]]  # [true class][predicted class]
    largest_absorbed: float  # the largest share of one class's clips taken by another class


@dataclass
class EmotionEval:
    """Figures of the emotion labels on labelled clips, per cue and fused, with abstention."""

    clips: int
    speakers: int
    min_confidence: float
    cues: dict[str, CueFigures] = field(default_factory=dict)
    coverage: float = 0.0  # share of clips the fused label names (confidence >= min_confidence)
    precision: float | None = None  # top-1 on those clips
    speaker_coverage: float | None = None  # the same of the speaker-relative labels (None: not judged)
    speaker_precision: float | None = None
    per_clip: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.0f}%"

        lines = [f"{self.clips} labelled clip(s) of {self.speakers} speaker(s); 7 classes"]
        lines.append("  cue               top-1  neutral AUC  most absorbed")
        for name, c in self.cues.items():
            auc = "-" if c.neutral_auc is None else f"{c.neutral_auc:.2f}"
            lines.append(f"  {name:<16} {pct(c.accuracy):>6}  {auc:>11}  {pct(c.largest_absorbed):>13}")
        lines.append(
            f"  labelled at confidence >= {self.min_confidence:g}: {pct(self.coverage)} of clips, "
            f"precision {pct(self.precision)}"
        )
        if self.speaker_coverage is not None:
            lines.append(
                f"  speaker-relative, labelled at confidence >= {self.min_confidence:g}: "
                f"{pct(self.speaker_coverage)} of clips, precision {pct(self.speaker_precision)}"
            )
        for cue in ("fused", SPEAKER_RELATIVE):
            if cue not in self.cues:
                continue
            lines.append(f"  confusion (rows: true, columns: {cue} label)")
            lines.append("  " + " " * 9 + "".join(f"{c[:7]:>8}" for c in EMOTION_CLASSES))
            for name, row in zip(EMOTION_CLASSES, self.cues[cue].confusion, strict=True):
                lines.append(f"  {name:<9}" + "".join(f"{n:>8}" for n in row))
        return "\n".join(lines)


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return None
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def cue_figures(probs: np.ndarray, labels: np.ndarray) -> CueFigures:
    """Figures of class probabilities ``probs`` (n, 7) against ``labels`` (n,)."""
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((len(EMOTION_CLASSES), len(EMOTION_CLASSES)), int)
    np.add.at(confusion, (labels, predicted), 1)
    shares = [
        confusion[t, p] / confusion[t].sum()
        for t in range(len(EMOTION_CLASSES))
        for p in range(len(EMOTION_CLASSES))
        if t != p and confusion[t].sum()
    ]
    return CueFigures(
        float(np.mean(predicted == labels)),
        _auc(1 - probs[:, NEUTRAL], labels != NEUTRAL),
        confusion.tolist(),
        float(max(shares, default=0.0)),
    )


def _cue_probs(
    clips: Sequence[LabelledClip],
    model: EmotionFusion,
    shrink: float | None = None,
    voice: VoiceFusion | None = None,
) -> dict[str, np.ndarray]:
    """Each cue's class probabilities under ``model``, shape (n, 7) each: the face model, the
    blendshapes, the face side (both fused), with ``voice`` and clips with voice readings the
    voice cue (uniform where a clip has none), and ``fused`` (the labels); with ``shrink`` (and a
    fusion that keeps its reference means) also the speaker-relative labels
    (:mod:`extractors.emotion.speaker`, speakers by :attr:`LabelledClip.group`)."""
    faces, medians = _face_probs(clips), _medians(clips)
    side = model.probs(face_log_probs(faces), medians)
    cues = {"face model": faces, "blendshapes": model.blendshape_probs(medians), "face side": side}
    voices = np.array([c.voice_probs if c.voice_probs is not None else np.full(7, np.nan) for c in clips])
    heard = voice is not None and not np.isnan(voices).all()
    if heard:
        cues["voice"] = np.where(np.isnan(voices), 1 / len(EMOTION_CLASSES), voices)
    cues["fused"] = _with_voice(side, voices, voice) if heard else side
    if shrink is not None and model.reference_face_log is not None:
        groups = [c.group for c in clips]
        relative = relative_probs(model, faces, medians, groups, shrink)
        if heard and voice is not None:
            relative = _with_voice(
                relative, relative_voice(voices, groups, voice.reference_log, shrink), voice
            )
        cues[SPEAKER_RELATIVE] = relative
    return cues


def _with_voice(side: np.ndarray, voices: np.ndarray, voice: VoiceFusion | None) -> np.ndarray:
    """Each row of the face side's ``side`` (n, 7) fused with its row of ``voices`` (n, 7; NaN
    rows: no voice reading, the face side alone)."""
    assert voice is not None
    return np.array(
        [
            fuse(f, None if np.isnan(v).any() else v, voice.face_weight, voice.voice_weight)[0]
            for f, v in zip(side, voices, strict=True)
        ]
    )


def figures(clips: Sequence[LabelledClip], cues: dict[str, np.ndarray], min_confidence: float) -> EmotionEval:
    """The figures of each cue's probabilities (``cues["fused"]`` the labels) on ``clips``, and the
    fused label's coverage and precision where its confidence reaches ``min_confidence``."""
    labels = np.array([c.label for c in clips])
    fused = cues["fused"]
    result = EmotionEval(len(clips), len({c.speaker for c in clips}), min_confidence)
    result.cues = {name: cue_figures(p, labels) for name, p in cues.items()}
    result.coverage, result.precision = abstention(fused, labels, min_confidence)
    if SPEAKER_RELATIVE in cues:
        result.speaker_coverage, result.speaker_precision = abstention(
            cues[SPEAKER_RELATIVE], labels, min_confidence
        )
    result.per_clip = [
        {
            "clip": c.name,
            "speaker": c.speaker,
            "label": EMOTION_CLASSES[c.label],
            "fused": EMOTION_CLASSES[int(p.argmax())],
            "confidence": round(float(p.max()), 3),
        }
        for c, p in zip(clips, fused, strict=True)
    ]
    return result


def abstention(probs: np.ndarray, labels: np.ndarray, min_confidence: float) -> tuple[float, float | None]:
    """(coverage, precision): the share of clips whose largest probability reaches
    ``min_confidence``, and top-1 on them (None when there are none)."""
    named = probs.max(axis=1) >= min_confidence
    precision = float(np.mean(probs[named].argmax(axis=1) == labels[named])) if named.any() else None
    return float(named.mean()), precision


def evaluate(
    clips: Sequence[LabelledClip],
    model: EmotionFusion,
    min_confidence: float,
    shrink: float | None = None,
    voice: VoiceFusion | None = None,
) -> EmotionEval:
    """Each cue and the fused labels of ``model`` (and ``voice``) on ``clips`` (:func:`figures`),
    with the speaker-relative labels at ``shrink``."""
    return figures(clips, _cue_probs(clips, model, shrink, voice), min_confidence)


def leave_one_speaker_out(
    clips: Sequence[LabelledClip],
    face_model: str,
    min_confidence: float,
    shrink: float | None = None,
    voice: VoiceFusion | None = None,
) -> EmotionEval:
    """Each speaker's clips judged by a fusion fitted on the other speakers' clips."""
    held: list[LabelledClip] = []
    parts: list[dict[str, np.ndarray]] = []
    for speaker in sorted({c.speaker for c in clips}):
        rest = [c for c in clips if c.speaker != speaker]
        if not any(c.label == NEUTRAL for c in rest):
            continue
        mine = [c for c in clips if c.speaker == speaker]
        held += mine
        parts.append(_cue_probs(mine, train(rest, face_model), shrink, voice))
    if not held:
        raise NothingToWorkOn("leave-one-speaker-out needs neutral clips of at least two speakers")
    return figures(
        held, {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}, min_confidence
    )


def train_root(root: str | Path, out: Path, config: Config, labels: Path | None = None) -> str:
    """Fit the fusion on the labelled clips of ``root`` (their face model: ``[emotion] model``),
    save it to ``out``; one line saying what it learned from."""
    from extractors.emotion.extractor import EmotionConfig

    clips = labelled_clips(root, labels)
    model = train(clips, config.section("emotion", EmotionConfig).model)
    model.save(out)
    return (
        f"{out}: {len(clips)} clips of {len({c.speaker for c in clips})} speakers; "
        f"face weight {model.face_weight:.2f}, blendshape weight {model.template_weight:.2f}"
    )


def evaluate_root(
    root: str | Path, config: Config, labels: Path | None = None, each_speaker_held_out: bool = False
) -> EmotionEval:
    """Figures of the emotion labels on the labelled clips of ``root``: with the fusion of
    ``config``, or, ``each_speaker_held_out``, each speaker's clips with a fusion fitted on the
    root's other speakers (for figures on a training split)."""
    from extractors.emotion.extractor import EmotionConfig, EmotionExtractor

    settings = config.section("emotion", EmotionConfig)
    clips = labelled_clips(root, labels)
    extractor = EmotionExtractor(config)
    voice = None
    if settings.voice and any(c.voice_probs is not None for c in clips):
        reference = extractor.load_voice().model.reference_log
        voice = VoiceFusion(settings.face_weight, settings.voice_weight, reference)
    shrink = settings.speaker_shrink
    if each_speaker_held_out:
        return leave_one_speaker_out(clips, settings.model, settings.min_confidence, shrink, voice)
    return evaluate(clips, extractor.load_fusion(), settings.min_confidence, shrink, voice)
