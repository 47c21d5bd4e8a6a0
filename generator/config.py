"""Typed settings of the generator: the model's shape and the training recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Settings):
    """Dilated TCN over log-mel frames (see :mod:`generator.model`); about 2.7M parameters by default."""

    n_mels: int = Field(80, ge=8, le=256)
    hidden: int = Field(256, ge=8, le=1024)
    dilations: tuple[int, ...] = Field(
        (1, 2, 4, 8, 16, 1, 2, 4, 8, 16), min_length=1, description="one residual block each"
    )
    kernel: Literal[3, 5, 7] = Field(3, description="odd: blocks keep their length")
    dropout: float = Field(0.1, ge=0, lt=1)


class TrainConfig(_Settings):
    """The training recipe of ``curate train``."""

    model: ModelConfig = ModelConfig()
    steps: int = Field(3000, ge=1, description="optimizer steps in all (a resumed run goes on to this)")
    batch_size: int = Field(16, ge=1)
    window_s: float = Field(2.0, gt=0, description="length of the random training windows, seconds")
    lr: float = Field(2e-3, gt=0, description="peak learning rate (AdamW), linear warm-up then cosine")
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    lip_weight: float = Field(3.0, ge=1, description="loss weight of lip channels; others weigh 1")
    velocity_weight: float = Field(1.0, ge=0, description="weight of the frame-to-frame velocity term")
    shuffle_buffer: int = Field(256, ge=1, description="windows held for shuffling")
    workers: int = Field(0, ge=0, description="DataLoader worker processes")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(500, ge=1, description="steps between checkpoints (and validation)")
