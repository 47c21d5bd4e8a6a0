"""The field's measures of speech-driven facial animation, in blendshape space.

Vertex metrics of the literature (LVE, MVE, FDD: FaceFormer, CodeTalker) are computed on the
blendshape vector instead of mesh vertices, hence the ``_BS`` suffix. Every function takes the
prediction and the ground truth of one clip, (n_frames, n_channels) arrays on the same frame grid,
and the channel names; groups are found by name (:mod:`generator.channels`).

- LVE_BS: per frame the L2 norm of the lip-channel error, averaged over frames.
- PVE_BS: the same over the phonetic channels only (:data:`generator.channels.PHONETIC`: jaw
  and lip shapes that phones determine; smiles and other expression channels left out).
- MVE_BS: the same over every channel.
- FDD_BS: upper-face dynamics deviation: mean over upper-face channels of the standard deviation
  over time, ground truth minus prediction (positive: the prediction moves less).
- lip aperture: ``jawOpen - mouthClose`` (the jaw opens; mouthClose closes the lips over it).
- lag: the shift of the prediction's aperture, within +-``max_lag`` frames, of best normalised
  cross-correlation with the ground truth's (+k: the prediction comes k frames late).
- MTM (mean temporal misalignment): local extrema of the aperture are matched between ground
  truth and prediction along a derivative dynamic time warping path; the mean absolute time
  between matched extrema, in milliseconds.
- closures: bilabial closures of the ground truth (local minima of the aperture in its lowest
  ``CLOSED_QUANTILE`` of the clip) with a local minimum of the prediction's aperture within
  +-``CLOSURE_TOLERANCE`` frames.
- jitter: mean absolute second difference (acceleration) of the prediction over the ground
  truth's (1: as smooth as the capture; above: shakier).
- diversity: root mean square distance between any two frames of a set of sequences,
  sqrt(2 * total variance); compared with the ground truth's it says how much of the motion's
  range a predictor covers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generator.channels import channel_index, group_indices, phonetic_indices

#: Frames either side searched for the lag and for an extremum's match.
MAX_LAG = 10
#: Half-width, in frames, of the window in which an extremum must be the largest (or smallest) value.
EXTREMUM_HALF_WIDTH = 3
#: A minimum of the aperture counts as a lip closure when it is in this lowest share of the clip's.
CLOSED_QUANTILE = 0.2
#: Frames either side within which a predicted closure matches one of the ground truth.
CLOSURE_TOLERANCE = 1


def lve_bs(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> float:
    """Mean over frames of the L2 norm of the lip-channel error (blendshape units)."""
    lip = group_indices(names, "lip")
    return float(np.linalg.norm(pred[:, lip] - truth[:, lip], axis=1).mean())


def pve_bs(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> float:
    """Mean over frames of the L2 norm of the phonetic-channel error (blendshape units)."""
    phonetic = phonetic_indices(names)
    return float(np.linalg.norm(pred[:, phonetic] - truth[:, phonetic], axis=1).mean())


def mve_bs(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of the L2 norm of the error over every channel."""
    return float(np.linalg.norm(pred - truth, axis=1).mean())


def fdd_bs(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> float:
    """Upper-face dynamics deviation: mean temporal std of the upper channels, truth minus prediction."""
    upper = group_indices(names, "upper")
    return float(truth[:, upper].std(axis=0).mean() - pred[:, upper].std(axis=0).mean())


def aperture(frames: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Lip aperture per frame, ``jawOpen - mouthClose``, shape (n_frames,)."""
    return frames[:, channel_index(names, "jawOpen")] - frames[:, channel_index(names, "mouthClose")]


def lag_frames(pred: np.ndarray, truth: np.ndarray, max_lag: int = MAX_LAG) -> tuple[int, float] | None:
    """(lag, correlation): the shift ``k`` in [-max_lag, max_lag] maximising the Pearson correlation
    of ``pred[t + k]`` with ``truth[t]`` over their overlap; +k: ``pred`` is ``k`` frames late.
    Signals are 1-D of equal length; None when no shift has two varying signals (a held pose)."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    best: tuple[int, float] | None = None
    for k in range(-max_lag, max_lag + 1):
        a = pred[max(k, 0) : len(pred) + min(k, 0)]
        b = truth[max(-k, 0) : len(truth) - max(k, 0)]
        if len(a) < 3 or np.ptp(a) < 1e-9 or np.ptp(b) < 1e-9:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if best is None or r > best[1]:
            best = (k, r)
    return best


def extrema(x: np.ndarray, half_width: int = EXTREMUM_HALF_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the local maxima and of the local minima of ``x``: the largest (smallest) value
    within ``half_width`` frames either side, first of a plateau, never at the ends."""
    n = len(x)
    maxima, minima = [], []
    for i in range(1, n - 1):
        window = x[max(i - half_width, 0) : i + half_width + 1]
        before = x[max(i - half_width, 0) : i]
        if (before == x[i]).any():  # inside a plateau
            continue
        if x[i] == window.max():
            maxima.append(i)
        elif x[i] == window.min():
            minima.append(i)
    return np.array(maxima, int), np.array(minima, int)


def closures(pred: np.ndarray, truth: np.ndarray, tolerance: int = CLOSURE_TOLERANCE) -> tuple[int, int]:
    """(matched, total): the ground truth aperture's closures (local minima in its lowest
    :data:`CLOSED_QUANTILE`) and how many have a local minimum of ``pred``'s within ``tolerance``
    frames. Both 1-D aperture curves of one clip."""
    _, truth_minima = extrema(truth)
    closed = truth_minima[truth[truth_minima] <= np.quantile(truth, CLOSED_QUANTILE)]
    _, pred_minima = extrema(pred)
    if not len(pred_minima):
        return 0, len(closed)
    matched = sum(int(np.abs(pred_minima - i).min() <= tolerance) for i in closed)
    return matched, len(closed)


def _derivative(x: np.ndarray) -> np.ndarray:
    """Keogh and Pazzani's derivative estimate for DDTW, ends copied from their neighbours."""
    d = np.empty_like(x, dtype=np.float64)
    if len(x) < 3:
        d[:] = 0.0
        return d
    d[1:-1] = ((x[1:-1] - x[:-2]) + (x[2:] - x[:-2]) / 2) / 2
    d[0], d[-1] = d[1], d[-2]
    return d


def ddtw_path(a: np.ndarray, b: np.ndarray, band: int) -> list[tuple[int, int]]:
    """Derivative dynamic time warping of 1-D ``a`` and ``b`` within a Sakoe-Chiba ``band`` of frames:
    the warping path as (index in a, index in b) pairs from (0, 0) to the two ends."""
    da, db = _derivative(a), _derivative(b)
    n, m = len(a), len(b)
    band = max(band, abs(n - m))
    cost = np.full((n + 1, m + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        lo, hi = max(1, i - band), min(m, i + band)
        for j in range(lo, hi + 1):
            cost[i, j] = abs(da[i - 1] - db[j - 1]) + min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
    path = [(n - 1, m - 1)]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        i, j = min(steps, key=lambda s: cost[s])
        path.append((i - 1, j - 1))
    return path[::-1]


def mtm_ms(pred: np.ndarray, truth: np.ndarray, fps: float, max_lag: int = MAX_LAG) -> float | None:
    """Mean temporal misalignment of two aperture curves, milliseconds.

    Each extremum of ``truth`` is mapped along the DDTW path to ``pred``'s time axis; its match is
    ``pred``'s extremum of the same kind nearest that point, within ``max_lag`` frames. Returns the
    mean absolute time between matched extrema, or None when none matched.
    """
    path = ddtw_path(truth, pred, band=max_lag)
    mapped: dict[int, list[int]] = {}
    for i, j in path:
        mapped.setdefault(i, []).append(j)
    gaps = []
    for mine, theirs in zip(extrema(truth), extrema(pred), strict=True):
        if not len(theirs):
            continue
        for i in mine:
            target = float(np.mean(mapped[int(i)]))
            nearest = theirs[np.argmin(np.abs(theirs - target))]
            if abs(nearest - target) <= max_lag:
                gaps.append(abs(int(nearest) - int(i)))
    return float(np.mean(gaps)) / fps * 1000.0 if gaps else None


def jitter(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute second difference of ``pred`` over that of ``truth`` (all channels)."""
    truth_acc = np.abs(np.diff(truth, n=2, axis=0)).mean()
    return float(np.abs(np.diff(pred, n=2, axis=0)).mean() / truth_acc) if truth_acc else float("nan")


def diversity(sequences: Sequence[np.ndarray]) -> float:
    """Root mean square distance between two frames drawn from ``sequences`` pooled:
    sqrt(2 * sum of channel variances)."""
    frames = np.concatenate(sequences, axis=0).astype(np.float64)
    return float(np.sqrt(2 * frames.var(axis=0).sum()))
