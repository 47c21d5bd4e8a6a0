"""Audio fingerprint of each clip, for finding the same utterance in another crop or encoding.

Haitsma-Kalker style: every 16 ms, 33 log-spaced bands between 300 and 3000 Hz; bit ``m`` of a
32-bit sub-fingerprint is the sign of the energy difference of bands ``m`` and ``m + 1``,
differenced again over time. Re-encoding flips a few bits, a different utterance about half.
A coarse embedding (the clip's mean log band energies, unit length) lets a large dataset compare
only candidate pairs. Matching is in :mod:`filters.duplicates`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from extractors.base import ClipRef, Extraction, Extractor
from ingest.media import SPEECH_SR_HZ
from manifests.schema import field

HOP = 256  # 16 ms at 16 kHz
WINDOW = 2048  # 128 ms
N_BANDS = 33


@cache
def _band_matrix() -> np.ndarray:
    """Rectangular log-spaced band filters, shape (N_BANDS, WINDOW // 2 + 1)."""
    edges = np.geomspace(300.0, 3000.0, N_BANDS + 1)
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / SPEECH_SR_HZ)
    return np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in itertools.pairwise(edges)]).astype(np.float64)


def band_energies(audio: np.ndarray) -> np.ndarray:
    """Log band energies every :data:`HOP` samples, shape (hops, N_BANDS)."""
    if len(audio) < WINDOW:
        return np.zeros((0, N_BANDS))
    n = 1 + (len(audio) - WINDOW) // HOP
    frames = audio[np.arange(n)[:, None] * HOP + np.arange(WINDOW)[None, :]].astype(np.float64)
    power = np.abs(np.fft.rfft(frames * np.hanning(WINDOW), axis=1)) ** 2
    return np.log(power @ _band_matrix().T + 1e-10)


def fingerprint(energies: np.ndarray) -> np.ndarray:
    """32-bit sub-fingerprints from :func:`band_energies`, shape (hops - 1,), uint32."""
    if len(energies) < 2:
        return np.zeros(0, np.uint32)
    across = energies[:, :-1] - energies[:, 1:]
    bits = (across[1:] - across[:-1]) > 0
    return (bits.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype(np.uint32)


def embedding(energies: np.ndarray) -> np.ndarray:
    """Unit-length mean of the band energies over the clip's louder half of hops, shape (N_BANDS,)."""
    if not len(energies):
        return np.zeros(N_BANDS, np.float32)
    loud = energies[energies.sum(axis=1) >= np.median(energies.sum(axis=1))]
    centred = loud.mean(axis=0) - loud.mean()
    return (centred / (np.linalg.norm(centred) + 1e-12)).astype(np.float32)


class FingerprintExtractor(Extractor):
    name = "fingerprint"
    version = "1"
    clip_fields: ClassVar[list[pa.Field]] = []
    track_fields: ClassVar[list[pa.Field]] = [
        field("audio_fingerprint", pa.list_(pa.uint32()), "32-bit audio sub-fingerprint every 16 ms"),
        field("audio_embedding", pa.list_(pa.float32()), "unit-length mean log band energy (33 bands)"),
    ]

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        if clip.has_audio:
            energies = band_energies(clip.audio())
            out.track.update(
                audio_fingerprint=fingerprint(energies).tolist(), audio_embedding=embedding(energies).tolist()
            )
        return out
