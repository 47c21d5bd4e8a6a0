"""Utterance-level features for the speech-emotion cue (:mod:`extractors.emotion.speech_model`).

Every function takes one utterance as mono float32 samples at 16 kHz
(:data:`ingest.media.SPEECH_SR_HZ`), shape (n,), values in [-1, 1], and returns one fixed-length
float32 vector per utterance:

- :func:`whisper_pooled`: the states of a Whisper encoder (``whisper-base``, multilingual; the
  CTranslate2 model faster-whisper loads, :class:`extractors.sync.features.WhisperEncoder`, which
  exposes only the last layer) at 50 Hz, the utterance alone at the start of the encoder's 30 s
  window (silence after it, as Whisper was trained), pooled over its active frames: mean then
  standard deviation, shape (2 * 512,). ``window_s=None`` encodes the utterance as it is, unpadded
  (about 15 times cheaper, and less accurate: ``bench/speech_emotion.py``).
- :func:`prosody`: pitch, level, timing (speaking-rate proxies) and spectral-balance statistics,
  shape (len(PROSODY_NAMES),) = (28,); units in :data:`PROSODY_NAMES`.
- :func:`spectral`: statistics of the mel-cepstrum and of the log-mel spectrum (voice quality and
  spectral balance), shape (len(SPECTRAL_NAMES),) = (119,).
- :func:`speech_features`: the parts a recipe names side by side (``"whisper+prosody+spectral"``).

A frame is *active* when its 10 ms level is within :data:`ACTIVE_DB` of the utterance's loudest
frame: leading and trailing silence (about a second in RAVDESS) then does not dilute the pools.

What is constant in a speaker's voice and recording (pitch range, loudness, microphone) is not
taken out here: :func:`speaker_centred` subtracts a speaker's mean vector over their own
utterances, which the model is trained and applied with when the recipe says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from extractors.audio_features import frame_level_db, log_mel, pitch_hz
from extractors.speech.window import SpeechWindow
from extractors.sync.features import WHISPER_HOP_S, WHISPER_MAX_MEL_FRAMES, WhisperEncoder
from ingest.media import SPEECH_SR_HZ

#: The encoder whose states :func:`whisper_pooled` pools (a registry name).
ENCODER = "whisper-base"
#: Seconds of the window an utterance is encoded in (the encoder's own: 30 s of 10 ms mel frames).
WINDOW_S = WHISPER_MAX_MEL_FRAMES / 100
#: Frames quieter than the loudest one by more than this (dB) are left out of the pools.
ACTIVE_DB = 35.0
#: Analysis rate of the prosody contours (frames per second: 10 ms hop).
PROSODY_FPS = 100.0
_N_MELS = 40

#: The prosody vector's entries, in order, with their units (st: semitones above 100 Hz).
PROSODY_NAMES: tuple[str, ...] = (
    "log_active_s",  # log of the seconds from the first to the last active frame
    "voiced_fraction",  # voiced frames / active frames
    "f0_mean_st", "f0_std_st", "f0_p10_st", "f0_p50_st", "f0_p90_st", "f0_range_st",  # p90 - p10
    "f0_slope_st_per_s",  # least-squares slope over the voiced frames
    "f0_delta_st",  # mean |change| between consecutive voiced frames (st per 10 ms)
    "f0_jitter",  # mean |change| / f0 between consecutive voiced frames (ratio)
    "level_max_dbfs", "level_mean_db", "level_std_db", "level_p10_db", "level_p50_db", "level_p90_db",
    "level_delta_db",  # mean |change| of the active frames' level (dB per 10 ms)
    "voiced_level_db",  # mean level of voiced frames minus that of unvoiced active frames
    "peaks_per_s",  # local maxima of the smoothed level (syllable-nucleus proxy) per active second
    "voiced_runs_per_s",  # voiced stretches per active second
    "voiced_run_s",  # mean length of a voiced stretch (s)
    "pause_fraction",  # frames more than 25 dB under the loudest, inside the active span
    "spectral_tilt",  # slope of the mean log-mel spectrum over its 40 bands (log energy per band)
    "alpha_ratio",  # mean log energy above 1 kHz minus below (natural log)
    "centroid_band",  # energy-weighted mean mel band of the active frames (0..39)
    "spectral_flux",  # mean |change| of the log-mel spectrum between frames (per band)
    "mel_std",  # mean over bands of the log-mel standard deviation over active frames
)  # fmt: skip


def _active(level_db: np.ndarray) -> np.ndarray:
    """Frames within :data:`ACTIVE_DB` of the loudest, shape like ``level_db`` (bool)."""
    return level_db >= level_db.max(initial=-300.0) - ACTIVE_DB


def whisper_states(
    audio: np.ndarray, encoder: WhisperEncoder, window_s: float | None = WINDOW_S
) -> np.ndarray:
    """The encoder's last-layer states at 50 Hz (state ``j`` centred at ``j * 20`` ms) of the
    utterance, shape (ceil(n / 320), 512) for ``whisper-base``. The utterance is followed by
    silence up to a whole number of ``window_s`` windows before encoding (pieces of at most 30 s
    are encoded at once); ``None``: encoded as it is."""
    n_states = -(-len(audio) // 320)
    if window_s:
        window = round(window_s * SPEECH_SR_HZ)
        padded = np.zeros(max(-(-len(audio) // window), 1) * window, np.float32)
        padded[: len(audio)] = audio
        audio = padded
    return encoder.states(audio)[:n_states]


def active_states(audio: np.ndarray, n_states: int) -> np.ndarray:
    """Which of ``n_states`` 20 ms encoder states are active (their two 10 ms frames' louder level
    within :data:`ACTIVE_DB` of the loudest), shape (n_states,) bool; all when none would be."""
    level = frame_level_db(audio, 1.0 / WHISPER_HOP_S, n_states)
    active = _active(level)
    return active if active.any() else np.ones(n_states, bool)


def pool_states(states: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Mean and standard deviation over the (active) rows of ``states`` (n, d), shape (2 * d,)."""
    rows = states[active] if active is not None and active.any() else states
    rows = rows.astype(np.float64)
    return np.concatenate([rows.mean(axis=0), rows.std(axis=0)]).astype(np.float32)


def whisper_pooled(
    audio: np.ndarray, encoder: WhisperEncoder, window_s: float | None = WINDOW_S
) -> np.ndarray:
    """Whisper states (:func:`whisper_states`) pooled over the utterance's active frames: mean,
    then standard deviation, shape (2 * 512,) for ``whisper-base`` (the encoder's units)."""
    states = whisper_states(audio, encoder, window_s)
    return pool_states(states, active_states(audio, len(states)))


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in ``mask``, shape (n_runs,)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def prosody(audio: np.ndarray) -> np.ndarray:
    """Prosodic and spectral-balance statistics of an utterance, shape (len(PROSODY_NAMES),)
    float32, in the units :data:`PROSODY_NAMES` gives; zeros for pitch entries when nothing is
    voiced."""
    fps = PROSODY_FPS
    n = max(int(np.ceil(len(audio) / SPEECH_SR_HZ * fps)), 1)
    level = frame_level_db(audio, fps, n).astype(np.float64)
    active = _active(level)
    first, last = np.flatnonzero(active)[[0, -1]]
    span = slice(first, last + 1)
    active_s = (last - first + 1) / fps
    f0 = pitch_hz(audio, fps, n).astype(np.float64)
    voiced = np.isfinite(f0) & active
    st = 12.0 * np.log2(np.where(voiced, f0, 100.0) / 100.0)

    if voiced.sum() >= 2:
        v = st[voiced]
        t = np.flatnonzero(voiced) / fps
        p10, p50, p90 = np.percentile(v, [10, 50, 90])
        slope = np.polyfit(t, v, 1)[0] if np.ptp(t) > 0 else 0.0
        pairs = voiced[1:] & voiced[:-1]
        d = np.abs(np.diff(st))[pairs]
        df = (np.abs(np.diff(f0)) / f0[:-1])[pairs] if pairs.any() else np.zeros(1)
        pitch = [v.mean(), v.std(), p10, p50, p90, p90 - p10, slope,
                 d.mean() if len(d) else 0.0, df.mean()]  # fmt: skip
    else:
        pitch = [0.0] * 9

    top = level.max()
    rel = level[active] - top
    unvoiced = active & ~voiced
    voiced_level = level[voiced].mean() - level[unvoiced].mean() if voiced.any() and unvoiced.any() else 0.0
    smooth = np.convolve(level[span], np.ones(5) / 5, mode="same")
    inner = smooth[1:-1]
    peaks = (inner > smooth[:-2]) & (inner >= smooth[2:]) & (inner > top - 25.0)
    runs = _runs(voiced[span])
    pause = float(np.mean(level[span] < top - 25.0))

    mel = log_mel(audio, fps, n, _N_MELS).astype(np.float64)[active]
    spectrum = mel.mean(axis=0)
    bands = np.arange(_N_MELS)
    split = int(np.searchsorted(_mel_centres_hz(), 1000.0))
    power = np.exp(mel - mel.max())
    centroid = float((power @ bands).sum() / power.sum())
    flux = float(np.abs(np.diff(mel, axis=0)).mean()) if len(mel) > 1 else 0.0

    values = [np.log(active_s), voiced.sum() / max(active.sum(), 1), *pitch,
              top, rel.mean(), rel.std(), *np.percentile(rel, [10, 50, 90]),
              np.abs(np.diff(level[active])).mean() if active.sum() > 1 else 0.0, voiced_level,
              peaks.sum() / active_s, len(runs) / active_s, runs.mean() / fps if len(runs) else 0.0, pause,
              np.polyfit(bands, spectrum, 1)[0], spectrum[split:].mean() - spectrum[:split].mean(),
              centroid, flux, mel.std(axis=0).mean()]  # fmt: skip
    return np.asarray(values, np.float32)


_N_CEPS = 13
#: The spectral vector's entries: mel-cepstral coefficients c1..c13 (DCT-II of the 40-band natural
#: log-mel, 10 ms frames, active frames only), their means, standard deviations and mean |change|
#: per 10 ms; the log-mel spectrum's mean per band relative to its mean over bands, and its standard
#: deviation per band (natural log energy).
SPECTRAL_NAMES: tuple[str, ...] = (
    *(f"mfcc{i}_mean" for i in range(1, _N_CEPS + 1)),
    *(f"mfcc{i}_std" for i in range(1, _N_CEPS + 1)),
    *(f"mfcc{i}_delta" for i in range(1, _N_CEPS + 1)),
    *(f"mel{b}_rel_mean" for b in range(_N_MELS)),
    *(f"mel{b}_std" for b in range(_N_MELS)),
)


def spectral(audio: np.ndarray) -> np.ndarray:
    """Mel-cepstral and log-mel statistics over the active frames, shape (len(SPECTRAL_NAMES),)
    float32, in the order and units :data:`SPECTRAL_NAMES` gives."""
    n = max(int(np.ceil(len(audio) / SPEECH_SR_HZ * PROSODY_FPS)), 1)
    active = _active(frame_level_db(audio, PROSODY_FPS, n))
    mel = log_mel(audio, PROSODY_FPS, n, _N_MELS).astype(np.float64)[active]
    bands = np.arange(_N_MELS)
    dct = np.cos(np.pi / _N_MELS * (bands[None, :] + 0.5) * np.arange(1, _N_CEPS + 1)[:, None])
    ceps = mel @ dct.T
    delta = np.abs(np.diff(ceps, axis=0)).mean(axis=0) if len(ceps) > 1 else np.zeros(_N_CEPS)
    values = [ceps.mean(axis=0), ceps.std(axis=0), delta, mel.mean(axis=0) - mel.mean(), mel.std(axis=0)]
    return np.concatenate(values).astype(np.float32)


def _mel_centres_hz() -> np.ndarray:
    """Centre frequencies (Hz) of the 40 mel bands :func:`log_mel` uses (80 Hz to 7.6 kHz)."""

    def to_mel(hz: float) -> float:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    mels = np.linspace(to_mel(80.0), to_mel(7600.0), _N_MELS + 2)[1:-1]
    return 700.0 * (10 ** (mels / 2595.0) - 1)


#: The feature parts a recipe's ``kind`` joins with "+", in any order: ``whisper_clip`` is the
#: Whisper part encoded unpadded (``window_s=None``).
PARTS = ("whisper", "whisper_clip", "prosody", "spectral")


def speech_features(
    audio: np.ndarray, encoder: WhisperEncoder | None, kind: str = "whisper+prosody+spectral"
) -> np.ndarray:
    """The feature vector of one utterance for a recipe's ``kind``: parts of :data:`PARTS` joined
    by "+", concatenated in that order: ``"whisper"`` or ``"whisper_clip"`` (1024), ``"prosody"``
    (len(PROSODY_NAMES)), ``"spectral"`` (len(SPECTRAL_NAMES)); float32. ``encoder`` is a loaded
    :class:`WhisperEncoder` of :data:`ENCODER` (needed only for the Whisper parts)."""
    parts = kind.split("+")
    if not parts or set(parts) - set(PARTS):
        raise ValueError(f"unknown speech feature kind {kind!r}")
    out = []
    for part in parts:
        if part.startswith("whisper"):
            if encoder is None:
                raise ValueError(f"the speech features {kind!r} need the Whisper encoder {ENCODER!r}")
            out.append(whisper_pooled(audio, encoder, WINDOW_S if part == "whisper" else None))
        elif part == "prosody":
            out.append(prosody(audio))
        else:
            out.append(spectral(audio))
    return np.concatenate(out).astype(np.float32)


def window_features(window: SpeechWindow) -> np.ndarray:
    """The voice cue's input for a clip's speech window (:mod:`extractors.speech.window`): the
    encoder's states pooled over the window's active frames (:func:`pool_states`), then
    :func:`prosody` and :func:`spectral` of its speech, shape (2 * dim + 28 + 119,) = (1171,)
    float32 for ``whisper-base``."""
    pooled = pool_states(window.states, active_states(window.audio, len(window.states)))
    return np.concatenate([pooled, prosody(window.audio), spectral(window.audio)]).astype(np.float32)


def speaker_centred(features: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """``features`` (n, d) minus, per row, the mean of its speaker's rows, shape (n, d) float32.

    At use, a speaker's rows are all of their utterances at hand (the more, and the more varied
    in emotion, the better the mean stands for their voice)."""
    out = np.asarray(features, np.float64).copy()
    keys = np.asarray(speakers)
    for key in np.unique(keys):
        rows = keys == key
        out[rows] -= out[rows].mean(axis=0)
    return out.astype(np.float32)
