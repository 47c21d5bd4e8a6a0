"""The voice cue of emotion: the speech-emotion model on a clip's speech window, and its fusion
with the face cues.

Input: the clip's speech window (:mod:`extractors.speech.window`: voice-activity spans joined, at
most 30 s, and the ``whisper-base`` encoder's states of it), which the speech extractor leaves in
the clip's shared media when it runs before emotion in the same process on the CPU; otherwise the
voice cue finds the speech and encodes it itself (one encoder pass per clip). Features:
:func:`extractors.emotion.speech_features.window_features` (pooled encoder states, prosody,
spectral statistics; 1171 values). Model: :class:`extractors.emotion.speech_model.SpeechEmotionModel`
shipped as ``speech-emotion`` (fitted by ``python -m bench.speech_emotion`` on the pool's emotional
speech of 50 speakers; figures in docs/scores.md), its temperature fitted on speakers it did not see.

Fusion (:func:`fuse`): ``p ∝ exp(face_weight * log p_face + voice_weight * log p_voice)``, ``p_face``
the face side's fused distribution (face model and blendshapes), each cue calibrated on its own.
A clip with one usable cue gets that cue alone; ``emotion_cues`` says which were used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from extractors.base import trained_here
from extractors.emotion.speech_features import window_features
from extractors.emotion.speech_model import SpeechEmotionModel
from extractors.speech.window import SpeechWindow, encode_speech
from ingest.media import SPEECH_SR_HZ

SPEECH_EMOTION_SHA256 = "53be783571361470f2be2daffc3d0bfc33ee8f46287a3d4d603c57a4f0e8b482"
SPEECH_EMOTION_SIZE = 929276
SPEECH_EMOTION = trained_here(
    "speech-emotion",
    "Speech emotion, 7 classes, from whisper-base states, prosody and spectral statistics of a clip's "
    "speech; trained by this project on RAVDESS (19 actors), EmoDB (8) and URDU (23 codes) "
    "(docs/scores.md); needs whisper-base",
    "speech_emotion.npz",
    SPEECH_EMOTION_SHA256,
    SPEECH_EMOTION_SIZE,
    licence="CC BY-NC-SA 4.0 (weights, from RAVDESS; EmoDB and URDU: research use)",
)


def fuse(
    face: np.ndarray | None, voice: np.ndarray | None, face_weight: float, voice_weight: float
) -> tuple[np.ndarray | None, str | None]:
    """The fused distribution (7,) of the face side's ``face`` and the voice cue's ``voice``
    distributions (each (7,) or None), and which cues it used: "face+voice", "face", "voice",
    or (None, None) when neither is there."""
    if face is None and voice is None:
        return None, None
    if face is None or voice is None:
        alone = face if face is not None else voice
        return np.asarray(alone, np.float64), "face" if face is not None else "voice"
    logits = face_weight * np.log(np.asarray(face) + 1e-9) + voice_weight * np.log(np.asarray(voice) + 1e-9)
    p = np.exp(logits - logits.max())
    return p / p.sum(), "face+voice"


class VoiceCue:
    """The speech-emotion model and, loaded at the first clip that needs it, a Whisper encoder."""

    def __init__(self, model_path: Path, encoder_path: Path, min_speech_s: float):
        self.model = SpeechEmotionModel.load(model_path)
        self._encoder_path = encoder_path
        self._encoder: Any = None
        self.min_speech_s = min_speech_s

    def encode(self, audio: np.ndarray, whole_if_silent: bool = False) -> SpeechWindow | None:
        """The speech window of 16 kHz ``audio``, encoded here; when voice activity detection
        finds no speech: None, or with ``whole_if_silent`` the whole of ``audio`` as its speech."""
        if self._encoder is None:
            from faster_whisper import WhisperModel  # heavy: only where the speech stage left no window

            self._encoder = WhisperModel(
                str(self._encoder_path), device="cpu", compute_type="int8", cpu_threads=1
            )
        window = encode_speech(self._encoder, audio)
        if window is None and whole_if_silent:
            window = encode_speech(self._encoder, audio, [{"start": 0, "end": len(audio)}])
        return window

    def probs(self, window: SpeechWindow | None) -> tuple[np.ndarray | None, str | None]:
        """Class probabilities (7,) of a speech window, or None and why there are none."""
        if window is None:
            return None, "no speech"
        seconds = len(window.audio) / SPEECH_SR_HZ
        if seconds < self.min_speech_s:
            return None, f"{seconds:.1f} s of speech, under [emotion] voice_min_speech_s"
        return self.model.predict_proba(window_features(window)[None])[0], None
