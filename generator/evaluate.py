"""``curate eval``: the trained model against baselines, on one split, with every metric.

Predictors, each over the split's clips whole:

- ``model + clip neutral``: the trained generator's motion on the clip's own neutral (the median
  pose stored with its labels): the speaker-relative error;
- ``model + default neutral``: its motion on the model's default neutral (what a user who gives
  no neutral gets): the absolute error;
- ``default neutral``: the model's default neutral (the training clips' mean neutral), held;
- ``clip median pose``: each clip's own median per channel (its neutral), held (it knows the
  answer's level);
- ``truth +1 / +2 / +4 frames``: the ground truth delayed by 1, 2, 4 frames (first frame held):
  perfect shapes, wrong timing;
- ``other clip``: the ground truth of the next clip of the split (looped or cut to length): real
  motion, unrelated to the audio (needs two clips);
- ``ground truth``: the reference row.

Per-clip measures (FDD_BS, lag, MTM, jitter) are averaged over the clips where they are defined
(a held pose has no lag and no extrema: "-"); LVE_BS, PVE_BS and MVE_BS over all frames;
closures pooled over the split's clips (share of the ground truth's matched within +-1 frame);
diversity over every frame of the split (see :mod:`generator.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generator import metrics
from generator.checkpoint import load_checkpoint
from generator.data import Clip, Export, SequenceStream, ShardError
from generator.model import Generator
from generator.train import cache_features, pick_device

#: Columns of the table, in order, with their formats.
COLUMNS: dict[str, str] = {
    "LVE_BS": "{:.4f}",
    "PVE_BS": "{:.4f}",
    "MVE_BS": "{:.4f}",
    "FDD_BS": "{:+.4f}",
    "lag_frames": "{:+.2f}",
    "lag_corr": "{:.3f}",
    "closures": "{:.3f}",
    "MTM_ms": "{:.1f}",
    "jitter": "{:.2f}",
    "diversity": "{:.4f}",
}


@dataclass(frozen=True)
class EvalTable:
    split: str
    clips: int
    seconds: float
    rows: dict[str, dict[str, float | None]]  # predictor -> column -> value (None: not defined)

    def to_text(self) -> str:
        width = max(len(name) for name in self.rows) + 2
        lines = [
            f"split {self.split}: {self.clips} clips, {self.seconds:.1f} s",
            "predictor".ljust(width) + "".join(f"{c:>12}" for c in COLUMNS),
        ]
        for name, row in self.rows.items():
            cells = [("-" if row[c] is None else fmt.format(row[c])).rjust(12) for c, fmt in COLUMNS.items()]
            lines.append(name.ljust(width) + "".join(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "clips": self.clips, "seconds": self.seconds, "rows": self.rows}


def delayed(truth: np.ndarray, frames: int) -> np.ndarray:
    """``truth`` ``frames`` frames late, its first frame held, shape unchanged."""
    return np.concatenate([np.repeat(truth[:1], frames, axis=0), truth[: len(truth) - frames]])


def fitted_to(frames: np.ndarray, n: int) -> np.ndarray:
    """``frames`` looped or cut to ``n`` frames."""
    return np.resize(frames, (n, frames.shape[1]))


def score(
    preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], names: Sequence[str], fps: float
) -> dict[str, float | None]:
    """Every column of :data:`COLUMNS` for one predictor over clips (pairs of (n_frames, n_channels))."""
    pred_all, truth_all = np.concatenate(preds), np.concatenate(truths)
    lags = [
        metrics.lag_frames(metrics.aperture(p, names), metrics.aperture(t, names))
        for p, t in zip(preds, truths, strict=True)
    ]
    mtms = [
        metrics.mtm_ms(metrics.aperture(p, names), metrics.aperture(t, names), fps)
        for p, t in zip(preds, truths, strict=True)
    ]
    lagged = [lag for lag in lags if lag is not None]
    found = [m for m in mtms if m is not None]
    matched = [
        metrics.closures(metrics.aperture(p, names), metrics.aperture(t, names))
        for p, t in zip(preds, truths, strict=True)
    ]
    closed = sum(n for _, n in matched)
    return {
        "LVE_BS": metrics.lve_bs(pred_all, truth_all, names),
        "PVE_BS": metrics.pve_bs(pred_all, truth_all, names),
        "MVE_BS": metrics.mve_bs(pred_all, truth_all),
        "FDD_BS": float(np.mean([metrics.fdd_bs(p, t, names) for p, t in zip(preds, truths, strict=True)])),
        "lag_frames": float(np.mean([k for k, _ in lagged])) if lagged else None,
        "lag_corr": float(np.mean([r for _, r in lagged])) if lagged else None,
        "closures": sum(m for m, _ in matched) / closed if closed else None,
        "MTM_ms": float(np.mean(found)) if found else None,
        "jitter": float(np.mean([metrics.jitter(p, t) for p, t in zip(preds, truths, strict=True)])),
        "diversity": metrics.diversity(preds),
    }


@torch.no_grad()
def predict_clip(model: Generator, clip: Clip, device: torch.device, own_neutral: bool) -> np.ndarray:
    """The model's blendshapes for a clip's cached features, (n_frames, n_channels), on the clip's
    neutral (``own_neutral``) or the model's default."""
    if clip.features is None:
        raise ShardError(f"clip {clip.clip_id} has no cached features")
    features = torch.from_numpy(clip.features)[None].to(device)
    neutral = torch.from_numpy(clip.neutral).to(device) if own_neutral else None
    return model.animate(features, neutral)[0].cpu().numpy()


def evaluate(
    run_dir: str | Path,
    split: str = "test",
    export_path: str | Path | None = None,
    device: str = "cpu",
    report: Callable[[str], None] | None = None,
) -> EvalTable:
    """The table of every predictor on ``split`` of the run's export (or ``export_path``), its
    features cached first where missing (``report`` says so)."""
    torch_device = pick_device(device)
    trained = load_checkpoint(run_dir, torch_device)
    export = Export.open(export_path or trained.export)
    if export.names != trained.names:
        raise ShardError(f"{export.path} has other channels than the model of {run_dir}")
    kind = trained.config.model.features
    cache_features(export, kind, report)
    clips = list(SequenceStream(export.files(split), rank=0, world_size=1, features=kind))
    truths = [c.blendshapes for c in clips]
    default = trained.model.default_neutral.cpu().numpy()
    predictors: dict[str, Callable[[int, Clip], np.ndarray]] = {
        "ground truth": lambda i, c: c.blendshapes,
        "model + clip neutral": lambda i, c: predict_clip(trained.model, c, torch_device, True),
        "model + default neutral": lambda i, c: predict_clip(trained.model, c, torch_device, False),
        "default neutral": lambda i, c: np.tile(default, (len(c.blendshapes), 1)),
        "clip median pose": lambda i, c: np.tile(c.neutral, (len(c.blendshapes), 1)),
        **{
            f"truth +{k} frames": lambda i, c, k=k: delayed(c.blendshapes, k)  # type: ignore[misc]
            for k in (1, 2, 4)
        },
    }
    if len(clips) > 1:
        predictors["other clip"] = lambda i, c: fitted_to(
            clips[(i + 1) % len(clips)].blendshapes, len(c.blendshapes)
        )
    rows = {
        name: score([make(i, c) for i, c in enumerate(clips)], truths, export.names, export.fps)
        for name, make in predictors.items()
    }
    seconds = sum(len(t) for t in truths) / export.fps
    return EvalTable(split, len(clips), seconds, rows)
