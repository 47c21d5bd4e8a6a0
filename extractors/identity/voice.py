"""A voice descriptor per clip: who is heard, beside who is seen.

Model: the GE2E speaker encoder of Resemblyzer (Resemble AI, Apache-2.0, code and weights; trained
on LibriSpeech, VoxCeleb 1 and 2), its ``pretrained.pt`` fetched from the ``resemblyzer`` wheel
on PyPI and sha256-verified (``voice-embedding`` in the registry); the package itself is never
installed or imported: the network (3 LSTM layers of 256, a linear layer, ReLU, unit length) and
its input (40-band mel power, 25 ms windows every 10 ms) are written here after its published
design. Input: a clip's speech (voice-activity spans joined, at 16 kHz), the same speech window
the voice cue of emotion reads (:mod:`extractors.speech.window`). The speech is cut into 1.6 s
partials, 1.3 a second, each embedded; the clip's descriptor is their unit mean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ingest.media import SPEECH_SR_HZ
from settings.models import ModelFile, ModelSpec, WheelSource

#: The weights' file in the model folder.
VOICE_FILE = "pretrained.pt"
#: Size of the descriptor.
VOICE_DIM = 256

VOICE_EMBEDDING = ModelSpec(
    name="voice-embedding",
    description="Resemblyzer GE2E speaker encoder (256-d voice descriptor from 40-band mel power)",
    licence="Apache-2.0",
    files=(
        ModelFile(VOICE_FILE, "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e", 17090379),
    ),
    wheel=WheelSource(("resemblyzer==0.1.4",), {VOICE_FILE: ("resemblyzer/" + VOICE_FILE,)}),
)

_WINDOW = SPEECH_SR_HZ * 25 // 1000  # samples per mel window (400)
_HOP = SPEECH_SR_HZ * 10 // 1000  # samples per mel frame (160)
_BANDS = 40
_PARTIAL_FRAMES = 160  # 1.6 s
_PARTIALS_PER_S = 1.3
_MIN_LAST_COVERAGE = 0.75
_TARGET_DBFS = -30.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / step, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(step * (mel - 15.0)), mel * (200.0 / 3))


def mel_bank(bands: int = _BANDS, n_fft: int = _WINDOW, sr: int = SPEECH_SR_HZ) -> np.ndarray:
    """Triangular mel filters, Slaney-normalised (equal area), shape (bands, n_fft // 2 + 1)."""
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sr / 2)), bands + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    return bank * (2.0 / (edges[2:] - edges[:-2]))[:, None]


_BANK = mel_bank()
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_WINDOW) / _WINDOW)).astype(np.float64)  # periodic


def mel_power(audio: np.ndarray) -> np.ndarray:
    """Mel power spectrogram of 16 kHz ``audio``, frames centred every 10 ms (edges reflected),
    shape (1 + n // 160, 40) float32."""
    padded = np.pad(np.asarray(audio, np.float64), _WINDOW // 2, mode="reflect")
    count = 1 + (len(padded) - _WINDOW) // _HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, _WINDOW)[::_HOP][:count]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=1)) ** 2
    return (power @ _BANK.T).astype(np.float32)


def partial_starts(samples: int) -> list[int]:
    """First mel frame of each 1.6 s partial of ``samples`` of speech (1.3 partials a second; the
    last kept when it holds at least 75% speech, and always one)."""
    frames = int(np.ceil((samples + 1) / _HOP))
    step = round(SPEECH_SR_HZ / _PARTIALS_PER_S / _HOP)
    starts = list(range(0, max(1, frames - _PARTIAL_FRAMES + step + 1), step))
    coverage = (samples - starts[-1] * _HOP) / (_PARTIAL_FRAMES * _HOP)
    if coverage < _MIN_LAST_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def loudness_raised(audio: np.ndarray) -> np.ndarray:
    """``audio`` raised to -30 dBFS when quieter (never lowered), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms <= 0:
        return audio
    gain_db = _TARGET_DBFS - 20 * np.log10(rms)
    return audio * (10 ** (gain_db / 20)) if gain_db > 0 else audio


class VoiceEmbedder:
    """The speaker encoder, loaded once (``weights``: the ``voice-embedding`` model's file, as the
    registry resolves it)."""

    def __init__(self, weights: Path):
        import torch

        state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
        self._lstm = torch.nn.LSTM(_BANDS, VOICE_DIM, 3, batch_first=True)
        self._linear = torch.nn.Linear(VOICE_DIM, VOICE_DIM)
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self._torch: Any = torch

    def embed(self, speech: np.ndarray) -> np.ndarray:
        """Unit voice descriptor (256,) float64 of ``speech`` (16 kHz, silences already removed,
        at least a few hundred ms)."""
        torch = self._torch
        speech = loudness_raised(np.asarray(speech, np.float32))
        starts = partial_starts(len(speech))
        end = (starts[-1] + _PARTIAL_FRAMES) * _HOP
        mel = mel_power(np.pad(speech, (0, max(0, end - len(speech)))))
        batch = np.stack([mel[s : s + _PARTIAL_FRAMES] for s in starts])
        with torch.no_grad():
            _, (hidden, _) = self._lstm(torch.from_numpy(batch))
            partials = torch.relu(self._linear(hidden[-1]))
            partials = partials / partials.norm(dim=1, keepdim=True).clamp_min(1e-12)
        mean = partials.numpy().astype(np.float64).mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)
