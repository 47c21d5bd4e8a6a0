"""The first window of a clip's speech, as the speech extractor encodes it, shared with the voice
cue of emotion (:mod:`extractors.emotion.voice`).

The window is the clip's speech (the voice-activity spans joined, as ``transcribe(vad_filter=True)``
joins them), at most the Whisper encoder's 30 s, its log-mel padded with zeros to 3000 frames, as
faster-whisper pads it. The speech extractor encodes it once for language identification and the
transcription (:class:`extractors.speech.extractor.EncodeOnce`) and, when it runs
:data:`VOICE_ENCODER` on the CPU, leaves the speech and the encoder's states in
``ClipMedia.derived[SPEECH_WINDOW]`` for the signals after it in the same process; ``None`` there
means the clip has no usable speech, and no entry that the window was not shared (another model,
or a GPU), so a reader encodes it itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.media import SPEECH_SR_HZ

#: The encoder whose states the voice cue reads (a registry name): the speech extractor leaves its
#: window only when it runs this model.
VOICE_ENCODER = "whisper-base"
#: Key of :class:`SpeechWindow` in ``ClipMedia.derived``.
SPEECH_WINDOW = "speech window"
#: Samples of the encoder's window (30 s at 16 kHz).
WINDOW_SAMPLES = 30 * SPEECH_SR_HZ
#: Samples per encoder state (20 ms).
STATE_SAMPLES = 320


@dataclass(frozen=True)
class SpeechWindow:
    """``audio``: the clip's speech, voice-activity spans joined, at most 30 s, shape (n,) float32
    at 16 kHz; ``states``: the Whisper encoder's last-layer states of it, one per 20 ms, shape
    (ceil(n / 320), dim) float32 (dim 512 for ``whisper-base``)."""

    audio: np.ndarray
    states: np.ndarray


def speech_spans(audio: np.ndarray) -> list[dict[str, int]]:
    """Voice-activity spans of 16 kHz ``audio`` (samples), Silero VAD as faster-whisper ships it."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return get_speech_timestamps(audio, VadOptions()) if len(audio) else []


def joined_speech(audio: np.ndarray, spans: list[dict[str, int]]) -> np.ndarray:
    """The ``spans`` of ``audio`` joined, shape (n,) float32."""
    from faster_whisper.vad import collect_chunks

    if not spans:
        return np.zeros(0, np.float32)
    return np.concatenate(collect_chunks(audio, spans)[0]).astype(np.float32)


def window_speech(audio: np.ndarray) -> np.ndarray:
    """The speech of a window of 16 kHz ``audio``: its voice-activity spans joined, the first
    30 s, shape (n,) float32 (empty without speech) — what :class:`SpeechWindow` holds."""
    return joined_speech(audio, speech_spans(audio))[:WINDOW_SAMPLES]


def window_mel(model: Any, speech: np.ndarray) -> np.ndarray:
    """The log-mel features of the first window of ``speech`` the encoder reads, shape
    (n_mels, 3000) float32, exactly as faster-whisper's transcription computes them (so that
    :class:`extractors.speech.extractor.EncodeOnce` finds them equal): ``model`` a faster-whisper
    ``WhisperModel``."""
    from faster_whisper.audio import pad_or_trim

    extractor = model.feature_extractor
    features = extractor(speech)
    return pad_or_trim(features[:, : min(extractor.nb_max_frames, features.shape[-1] - 1)])


def window_of(speech: np.ndarray, encoded: Any) -> SpeechWindow:
    """The :class:`SpeechWindow` of joined ``speech`` from the encoder's output for its first
    window (``encoded``: a CTranslate2 StorageView on the CPU or an array, shape (1, 1500, dim))."""
    audio = speech[:WINDOW_SAMPLES]
    states = np.asarray(encoded, np.float32)[0, : -(-len(audio) // STATE_SAMPLES)]
    return SpeechWindow(audio, states.copy())


def encode_speech(
    model: Any, audio: np.ndarray, spans: list[dict[str, int]] | None = None
) -> SpeechWindow | None:
    """The speech window of 16 kHz ``audio`` encoded by faster-whisper ``model`` (on the CPU);
    ``spans``: its speech (samples), else found by :func:`speech_spans`; ``None`` when there is no
    speech."""
    import ctranslate2

    speech = joined_speech(audio, speech_spans(audio) if spans is None else spans)
    if len(speech) < STATE_SAMPLES:
        return None
    mel = window_mel(model, speech)[None].astype(np.float32)
    return window_of(speech, model.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True))
