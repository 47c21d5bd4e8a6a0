"""Checkpoints of a training run: ``RUN/checkpoint.pt``, replaced atomically (temp + rename)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generator.config import TrainConfig
from generator.model import Generator
from manifests.store import atomic_write
from settings.errors import NothingToWorkOn
from settings.files import regular_file

CHECKPOINT = "checkpoint.pt"


class NoCheckpoint(NothingToWorkOn, FileNotFoundError):
    """The run folder has no checkpoint (not trained yet, or not a run folder)."""


@dataclass
class Trained:
    """A model restored from a run, with what it needs to be used."""

    model: Generator
    config: TrainConfig
    names: list[str]  # output channels, in order
    fps: float  # output frame rate
    sample_rate_hz: int  # audio rate it reads
    export: Path  # the export it was trained on
    step: int
    state: dict[str, Any]  # the whole checkpoint (optimizer state) for resuming


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``run_dir/checkpoint.pt`` through a temporary file and a rename."""
    return atomic_write(run_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))


def load_checkpoint(run_dir: str | Path, device: torch.device | str = "cpu") -> Trained:
    """The model of ``run_dir`` on ``device``, in eval mode."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise NoCheckpoint(f"{run_dir} has no {CHECKPOINT}: train with `curate train` first")
    state = torch.load(regular_file(path, "checkpoint"), map_location=device, weights_only=True)
    # Runs written before the style code name no `neutral_style`: they had none.
    state["config"]["model"].setdefault("neutral_style", False)
    config = TrainConfig.model_validate(state["config"])
    model = Generator(config.model, state["model"]["default_neutral"])
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return Trained(
        model,
        config,
        list(state["names"]),
        float(state["fps"]),
        int(state["sample_rate_hz"]),
        Path(state["export"]),
        int(state["step"]),
        state,
    )
