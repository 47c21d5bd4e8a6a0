"""Audio features on a clip's frame grid, shared by the sync, emotion and quality extractors.

All functions take mono float32 samples at 16 kHz (:data:`ingest.media.SPEECH_SR_HZ`) whose
first sample is the clip's first frame time, and return one row per output frame (frame ``k``
centred at ``k / fps`` seconds), so audio rows line up with the face track's rows.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ingest.media import SPEECH_SR_HZ

N_FFT = 512  # 32 ms window at 16 kHz


@cache
def mel_filterbank(
    n_mels: int, n_fft: int = N_FFT, fmin_hz: float = 80.0, fmax_hz: float = 7600.0
) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1)."""

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges = 700.0 * (
        10 ** (np.linspace(to_mel(np.array(fmin_hz)), to_mel(np.array(fmax_hz)), n_mels + 2) / 2595.0) - 1
    )
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SPEECH_SR_HZ)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)


def frame_windows(audio: np.ndarray, fps: float, n_frames: int, width: int = N_FFT) -> np.ndarray:
    """``width`` samples centred on each frame time (zero beyond the audio), shape (n_frames, width)."""
    centres = np.round(np.arange(n_frames) / fps * SPEECH_SR_HZ).astype(np.int64)
    beyond = max(0, int(centres[-1]) - len(audio)) if n_frames else 0
    padded = np.pad(audio.astype(np.float32), (width, width + beyond))
    starts = centres + width - width // 2
    return padded[starts[:, None] + np.arange(width)[None, :]]


def log_mel(audio: np.ndarray, fps: float, n_frames: int, n_mels: int = 40) -> np.ndarray:
    """Natural-log mel energies per frame, shape (n_frames, n_mels)."""
    if n_frames == 0:
        return np.zeros((0, n_mels), np.float32)
    spectrum = np.abs(np.fft.rfft(frame_windows(audio, fps, n_frames) * np.hanning(N_FFT), axis=1)) ** 2
    return np.log(spectrum @ mel_filterbank(n_mels).T + 1e-6).astype(np.float32)


def frame_level_db(audio: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """RMS level in dBFS of the ``1 / fps`` window around each frame, shape (n_frames,)."""
    if n_frames == 0:
        return np.zeros(0, np.float32)
    width = max(round(SPEECH_SR_HZ / fps), 1)
    windows = frame_windows(audio, fps, n_frames, width).astype(np.float64)
    return (10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)).astype(np.float32)


def pitch_hz(
    audio: np.ndarray, fps: float, n_frames: int, fmin_hz: float = 70.0, fmax_hz: float = 400.0
) -> np.ndarray:
    """Fundamental frequency per frame by normalised autocorrelation; NaN where unvoiced, shape (n_frames,).

    A frame counts as voiced when its autocorrelation peak in the pitch range reaches 0.5 of the
    frame's energy and the frame is within 40 dB of the clip's loudest frame.
    """
    if n_frames == 0:
        return np.zeros(0, np.float32)
    windows = frame_windows(audio, fps, n_frames, 1024).astype(np.float64)
    windows -= windows.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(windows * np.hanning(1024), n=2048, axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :1024]
    lags = np.arange(int(SPEECH_SR_HZ / fmax_hz), int(SPEECH_SR_HZ / fmin_hz) + 1)
    energy = acf[:, 0] + 1e-12
    peak_lag = lags[np.argmax(acf[:, lags], axis=1)]
    strength = acf[np.arange(n_frames), peak_lag] / energy
    level = 10 * np.log10(energy)
    voiced = (strength >= 0.5) & (level >= level.max() - 40.0)
    return np.where(voiced, SPEECH_SR_HZ / peak_lag, np.nan).astype(np.float32)
