"""Emotion classes from two cues, fused: a face model's class distribution on face crops, and the
blendshapes' departure from a neutral face, scored against expression templates.

Speech moves the mouth, and a face model reads a talking mouth as surprise or fear (calm
speakers of the quick start were "fear" and "surprise"): the face model reads the clip's quiet
frames, those whose speech-driven mouth channels (:data:`ARTICULATION_CHANNELS`) are lowest,
which takes out what speech explains.

Face cue: ``log p_face`` (7 classes) of the registry's expression model over the face crops of
the quietest quarter of evenly spaced frames (:func:`quiet_frames`).

Blendshape cue: the clip's median blendshapes (frames with a face) minus a neutral face (the mean
of the training clips labelled neutral), gaze channels left out, projected on one template per
class. A template is the mean of two unit vectors: the class's FACS prototype mapped onto ARKit
channels (:data:`FACS_PROTOTYPES`: happiness AU6+AU12, sadness AU1+AU4+AU15, surprise
AU1+AU2+AU5+AU26, fear AU1+AU2+AU4+AU5+AU20+AU26, anger AU4+AU5+AU7+AU23, disgust AU9+AU15+AU16),
a prior that needs no data, and the mean departure of the class's training clips (MediaPipe's
blendshapes do not follow FACS exactly: its sad and angry faces squint). Neutral has no template.

Fusion: ``logits = face_weight * log p_face + template_weight * scale * scores + bias`` (two
weights shared by the classes and a bias per class, fitted by :func:`fit` on labelled clips of
training speakers): few parameters, because labelled clips are few. The fused probabilities are
calibrated on those clips; ``confidence`` is the largest, and a label is given only from
``[emotion] min_confidence``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from manifests.schema import BLENDSHAPE_NAMES
from settings.files import regular_file

#: The classes, in the order of every probability vector (FER-2013's order).
EMOTION_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEUTRAL = EMOTION_CLASSES.index("neutral")

#: FACS action units on ARKit blendshapes (both sides share a unit's weight).
ACTION_UNITS: dict[int, tuple[str, ...]] = {
    1: ("browInnerUp",),
    2: ("browOuterUpLeft", "browOuterUpRight"),
    4: ("browDownLeft", "browDownRight"),
    5: ("eyeWideLeft", "eyeWideRight"),
    6: ("cheekSquintLeft", "cheekSquintRight"),
    7: ("eyeSquintLeft", "eyeSquintRight"),
    9: ("noseSneerLeft", "noseSneerRight"),
    12: ("mouthSmileLeft", "mouthSmileRight"),
    15: ("mouthFrownLeft", "mouthFrownRight"),
    16: ("mouthLowerDownLeft", "mouthLowerDownRight"),
    20: ("mouthStretchLeft", "mouthStretchRight"),
    23: ("mouthPressLeft", "mouthPressRight"),
    26: ("jawOpen",),
}
FACS_PROTOTYPES: dict[str, tuple[int, ...]] = {
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 26),
    "angry": (4, 5, 7, 23),
    "disgust": (9, 15, 16),
}
#: Blendshapes that speech moves: their sum is how much a frame articulates. The face model reads
#: the clip's quietest frames, where the face shows expression rather than phones.
ARTICULATION_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
)  # fmt: skip
_ARTICULATION = [BLENDSHAPE_NAMES.index(n) for n in ARTICULATION_CHANNELS]


def articulation(blendshapes: np.ndarray) -> np.ndarray:
    """How much each frame articulates: the sum of :data:`ARTICULATION_CHANNELS`, shape (n,);
    ``blendshapes``: (n, 52)."""
    return np.asarray(blendshapes, np.float64)[:, _ARTICULATION].sum(axis=1)


def quiet_frames(blendshapes: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` frames of ``blendshapes`` (n, 52) that articulate least, in time order."""
    return np.sort(np.argsort(articulation(blendshapes), kind="stable")[:count])


#: Channels the blendshape cue reads: all but gaze and ``_neutral``.
CUE_CHANNELS = np.array([not n.startswith(("eyeLook", "_neutral")) for n in BLENDSHAPE_NAMES])

#: Valence and arousal of each class on Russell's circumplex (-1..1), for expected values.
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "angry": (-0.6, 0.7),
    "disgust": (-0.7, 0.3),
    "fear": (-0.6, 0.7),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.4),
    "surprise": (0.2, 0.8),
    "neutral": (0.0, 0.0),
}


def facs_templates() -> np.ndarray:
    """Unit-norm FACS prototype per class on the 52 channels, shape (7, 52); neutral's is zero."""
    out = np.zeros((len(EMOTION_CLASSES), len(BLENDSHAPE_NAMES)))
    for c, name in enumerate(EMOTION_CLASSES):
        for au in FACS_PROTOTYPES.get(name, ()):
            for channel in ACTION_UNITS[au]:
                out[c, BLENDSHAPE_NAMES.index(channel)] += 1.0 / len(ACTION_UNITS[au])
    return _unit(out)


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norms > 0, rows / np.maximum(norms, 1e-12), 0.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def face_median(frames: Sequence[Sequence[float] | None] | None) -> np.ndarray | None:
    """A clip's median blendshapes over its frames with a face, shape (52,); None when no frame
    has one. ``frames``: the track's blendshapes per frame (None where no face was found)."""
    faces = [f for f in frames or [] if f is not None]
    return np.median(np.asarray(faces, np.float64), axis=0) if faces else None


def face_log_probs(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """The face cue: log of a face model's distribution, floored at 1e-3, shape (..., 7)."""
    return np.log(np.asarray(probs, np.float64) + 1e-3)


@dataclass(frozen=True)
class EmotionFusion:
    """Fitted fusion of the face and blendshape cues (:func:`fit`; saved as ``.npz``)."""

    neutral: np.ndarray  # (52,) blendshapes of a neutral face
    templates: np.ndarray  # (7, 52) unit templates per class (neutral: zero)
    scale: float  # template scores times this before the weight
    face_weight: float
    template_weight: float
    bias: np.ndarray  # (7,)
    face_model: str  # registry name of the face model whose distribution it was fitted on
    #: Mean face-model log probabilities (7,) and mean median blendshapes (52,) of the clips it
    #: was fitted on: where speaker-relative cues move a speaker's mean (extractors.emotion.speaker);
    #: None in fusions saved before they were kept.
    reference_face_log: np.ndarray | None = None
    reference_median: np.ndarray | None = None

    def template_scores(self, median: np.ndarray) -> np.ndarray:
        """Blendshape cue: departure from neutral projected on each template, shape (..., 7);
        ``median``: the clip's median blendshapes, shape (..., 52)."""
        return (
            ((np.asarray(median, np.float64) - self.neutral) * CUE_CHANNELS) @ self.templates.T * self.scale
        )

    def _blendshape_logits(self, median: np.ndarray) -> np.ndarray:
        return self.template_weight * self.template_scores(median) + self.bias

    def probs(self, face_log: np.ndarray, median: np.ndarray) -> np.ndarray:
        """Fused class probabilities, shape (..., 7); ``face_log``: :func:`face_log_probs` of the
        face model's distribution."""
        return softmax(self.face_weight * face_log + self._blendshape_logits(median))

    def blendshape_probs(self, median: np.ndarray) -> np.ndarray:
        """The blendshape cue alone, as a distribution (shape (..., 7))."""
        return softmax(self._blendshape_logits(median))

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "neutral": self.neutral,
            "templates": self.templates,
            "scale": self.scale,
            "face_weight": self.face_weight,
            "template_weight": self.template_weight,
            "bias": self.bias,
            "face_model": self.face_model,
            "classes": np.array(EMOTION_CLASSES),
        }
        if self.reference_face_log is not None and self.reference_median is not None:
            arrays.update(reference_face_log=self.reference_face_log, reference_median=self.reference_median)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> EmotionFusion:
        with np.load(regular_file(path, "emotion fusion model")) as f:
            if tuple(f["classes"]) != EMOTION_CLASSES:
                raise ValueError(f"{path}: fitted on classes {tuple(f['classes'])}, not {EMOTION_CLASSES}")
            return cls(
                f["neutral"],
                f["templates"],
                float(f["scale"]),
                float(f["face_weight"]),
                float(f["template_weight"]),
                f["bias"],
                str(f["face_model"]),
                f["reference_face_log"] if "reference_face_log" in f.files else None,
                f["reference_median"] if "reference_median" in f.files else None,
            )


def valence_arousal(probs: np.ndarray) -> tuple[float, float]:
    """Expected valence and arousal (-1..1) under class probabilities ``probs`` (7,)."""
    table = np.array([VALENCE_AROUSAL[c] for c in EMOTION_CLASSES])
    valence, arousal = np.asarray(probs) @ table
    return float(valence), float(arousal)


def fit(
    medians: np.ndarray,
    face_logs: np.ndarray,
    labels: np.ndarray,
    face_model: str,
    prior_share: float = 0.5,
    scale: float = 5.0,
    l2: float = 0.1,
    steps: int = 4000,
    rate: float = 0.05,
) -> EmotionFusion:
    """Fit the fusion on labelled clips: ``medians`` (n, 52) median blendshapes, ``face_logs``
    (n, 7) :func:`face_log_probs`, ``labels`` (n,) class indices. The neutral face is the mean of
    the neutral clips; each template is ``prior_share`` FACS prototype and the rest the class's
    mean departure; the weights and biases minimise the cross-entropy (gradient descent, ``l2``
    penalty); the cues' means over the clips are kept as the reference of speaker-relative cues. The defaults were chosen by leaving each training speaker out in turn
    (docs/scores.md), never on the test speakers."""
    medians, face_logs, labels = np.asarray(medians), np.asarray(face_logs), np.asarray(labels)
    if not (labels == NEUTRAL).any():
        raise ValueError("fitting needs clips labelled neutral (the neutral face)")
    neutral = medians[labels == NEUTRAL].mean(axis=0)
    departures = (medians - neutral) * CUE_CHANNELS
    means = np.array(
        [
            departures[labels == c].mean(axis=0) if (labels == c).any() and c != NEUTRAL else np.zeros(52)
            for c in range(len(EMOTION_CLASSES))
        ]
    )
    templates = prior_share * facs_templates() + (1 - prior_share) * _unit(means)
    model = EmotionFusion(neutral, templates, scale, 1.0, 1.0, np.zeros(len(EMOTION_CLASSES)), face_model)
    scores = model.template_scores(medians)
    onehot = np.eye(len(EMOTION_CLASSES))[labels]
    a, b, bias = 1.0, 1.0, np.zeros(len(EMOTION_CLASSES))
    for _ in range(steps):
        grad = (softmax(a * face_logs + b * scores + bias) - onehot) / len(labels)
        a -= rate * ((grad * face_logs).sum() + l2 * a)
        b -= rate * ((grad * scores).sum() + l2 * b)
        bias -= rate * (grad.sum(axis=0) + l2 * bias)
    return EmotionFusion(
        neutral, templates, scale, a, b, bias, face_model, face_logs.mean(axis=0), medians.mean(axis=0)
    )
