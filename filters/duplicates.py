"""Near-duplicates: clips whose audio is the same recording (another crop, length or encoding).

Pure functions over stored fingerprints (:mod:`extractors.fingerprint`); no media are read. Two
clips are twins when, at the best alignment, their sub-fingerprints differ in fewer than
``max_bit_error`` of the bits over at least ``min_overlap`` hops. Only pairs whose coarse
embeddings are close are aligned, so the cost grows with the candidates, not with every pair.
Within each group of twins one clip is kept (the best source, by the caller's rank) and the
others point to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Cosine similarity of embeddings above which two clips are aligned bit by bit.
CANDIDATE_COSINE = 0.8


@dataclass(frozen=True)
class Match:
    bit_error: float  # share of differing bits at the best alignment, 0..1 (unrelated audio: ~0.5)
    offset_hops: int  # hops to add to a's index to reach b's
    overlap_hops: int


def _bits(prints: np.ndarray) -> np.ndarray:
    """±1 per bit, shape (hops, 32)."""
    unpacked = (prints[:, None] >> np.arange(32, dtype=np.uint32)[None, :]) & 1
    return unpacked.astype(np.float64) * 2 - 1


def best_match(a: np.ndarray, b: np.ndarray, min_overlap: int) -> Match | None:
    """Lowest bit error of ``a`` against ``b`` over every alignment with ``min_overlap`` hops in common."""
    if min(len(a), len(b)) < min_overlap:
        return None
    x, y = _bits(a), _bits(b)
    size = len(a) + len(b)
    agree = np.fft.irfft(
        np.conj(np.fft.rfft(x, size, axis=0)) * np.fft.rfft(y, size, axis=0), size, axis=0
    ).sum(axis=1)
    steps = np.arange(size)
    lags = np.where(steps < len(b), steps, steps - size)  # circular index -> offset of b against a
    overlap = np.minimum(len(a), len(b) - lags) - np.maximum(0, -lags)
    ok = overlap >= min_overlap
    error = np.where(ok, (1 - agree / (32 * np.maximum(overlap, 1))) / 2, np.inf)
    i = int(np.argmin(error))
    return Match(float(error[i]), int(lags[i]), int(overlap[i])) if np.isfinite(error[i]) else None


def find_twins(
    prints: Mapping[str, np.ndarray],
    embeddings: Mapping[str, np.ndarray],
    rank: Callable[[str], Sequence[float]],
    max_bit_error: float = 0.35,
    min_overlap: int = 125,
) -> dict[str, tuple[str, float]]:
    """Clip id -> (id of the twin it duplicates, bit error) for every clip that is not kept.

    ``rank(clip_id)``: larger is the better source; the best of each group of twins is kept.
    """
    ids = sorted(i for i in prints if len(prints[i]) and i in embeddings)
    if len(ids) < 2:
        return {}
    emb = np.stack([embeddings[i] for i in ids])
    close = np.argwhere(np.triu(emb @ emb.T, k=1) >= CANDIDATE_COSINE)
    parent = {i: i for i in ids}

    def root(i: str) -> str:
        while parent[i] != i:
            i = parent[i]
        return i

    errors: dict[str, float] = {}
    for p, q in close:
        a, b = ids[p], ids[q]
        match = best_match(prints[a], prints[b], min_overlap)
        if match is not None and match.bit_error < max_bit_error:
            parent[root(a)] = root(b)
            errors[a] = min(errors.get(a, 1.0), match.bit_error)
            errors[b] = min(errors.get(b, 1.0), match.bit_error)
    groups: dict[str, list[str]] = {}
    for i in errors:
        groups.setdefault(root(i), []).append(i)
    twins = {}
    for members in groups.values():
        keep = max(members, key=lambda i: (tuple(rank(i)), i))
        twins.update({i: (keep, errors[i]) for i in members if i != keep})
    return twins
