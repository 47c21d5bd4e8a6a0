"""Calibration of blendshape values to an ARKit capture's ranges: a per-channel quantile map.

MediaPipe's channels do not span the ranges an iPhone (ARKit) capture gives: its jawOpen rarely
passes 0.5, its eyeLookUp stays near 0. A calibration maps each channel monotonically so that
the corpus's quantiles :data:`QUANTILES` land on the capture's: value ``x`` of channel ``c``
becomes ``interp(x, source[c], target[c])`` (flat beyond the ends). A channel either side holds
still (one value) keeps the identity; so do channels the capture lacks.

It is fitted on frames with a face of a dataset's accepted clips (:mod:`curate.arkit_fit`), kept as
JSON, and applied to exported labels (``curate export --calibration``) and predictions
(``curate predict --calibration``); ``curate report`` draws it (docs/generator.md).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from settings.errors import NothingToWorkOn

#: Quantiles matched between the corpus and the capture.
QUANTILES: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
#: A channel whose p1..p99 span is below this (either side) holds still: identity.
STILL = 1e-4


class CalibrationError(NothingToWorkOn, ValueError):
    """A calibration file is unreadable, or does not fit the channels it is applied to."""


def _knots(values: np.ndarray) -> np.ndarray:
    """Quantiles :data:`QUANTILES` of each column of (n, C) values, shape (C, len(QUANTILES))."""
    return np.quantile(values.astype(np.float64), QUANTILES, axis=0).T


@dataclass(frozen=True)
class Calibration:
    """Per channel ``names[c]``: knots ``source[c]`` (corpus quantiles, non-decreasing) mapped onto
    ``target[c]`` (capture quantiles); ``capture`` names the reference it was fitted against."""

    names: list[str]
    source: list[list[float]]
    target: list[list[float]]
    capture: str
    frames: int  # corpus frames it was fitted on

    @classmethod
    def fit(
        cls,
        corpus: np.ndarray,
        names: Sequence[str],
        capture: np.ndarray,
        capture_names: Sequence[str],
        capture_label: str,
    ) -> Calibration:
        """Fit on ``corpus`` (n, len(names)) against ``capture`` (m, len(capture_names)); names
        match case-insensitively."""
        where = {n.lower(): i for i, n in enumerate(capture_names)}
        source, target = _knots(corpus), np.zeros((len(names), len(QUANTILES)))
        theirs = _knots(capture)
        for c, name in enumerate(names):
            i = where.get(name.lower())
            still = np.ptp(source[c, 1:-1]) < STILL or i is None or np.ptp(theirs[i, 1:-1]) < STILL
            target[c] = source[c] if still else theirs[i]
        return cls(list(names), source.tolist(), target.tolist(), capture_label, len(corpus))

    def apply(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """``values`` (n, len(names)) mapped channel by channel, float32; a channel this
        calibration does not know is a :class:`CalibrationError`."""
        if values.ndim != 2 or values.shape[1] != len(names):
            raise CalibrationError(f"values of shape {values.shape} for {len(names)} channels")
        missing = [n for n in names if n not in self.names]
        if missing:
            raise CalibrationError(f"the calibration has no channels {missing[:5]}")
        out = np.empty(values.shape, np.float32)
        for j, name in enumerate(names):
            c = self.names.index(name)
            src, tgt = np.asarray(self.source[c]), np.asarray(self.target[c])
            # np.interp wants increasing knots: ties (a channel often at 0) are kept apart by a hair
            src = src + np.arange(len(src)) * 1e-9
            out[:, j] = np.interp(values[:, j], src, tgt)
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self) | {"quantiles": list(QUANTILES)}, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            doc = json.loads(Path(path).read_text())
            doc.pop("quantiles", None)
            return cls(**doc)
        except (OSError, ValueError, TypeError) as exc:
            raise CalibrationError(f"cannot read the calibration {path}: {exc}") from None


def read_capture(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """A capture CSV (a Live Link Face take, or any CSV with one numeric column per channel):
    its numeric columns as (n_frames, n_columns) float64 and their names. Columns that are not
    numbers (a timecode) are left out."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationError(f"cannot read the capture {path}: {exc}") from None
    if len(rows) < 2:
        raise CalibrationError(f"{path} has no frames")
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    keep, columns = [], []
    for j, name in enumerate(header):
        try:
            columns.append([float(r[j]) for r in body])
            keep.append(name)
        except ValueError:
            continue
    return np.asarray(columns, np.float64).T, keep
