"""Typed settings of the generator: the model's shape and the training recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from generator.features import FeatureKind


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Settings):
    """Dilated TCN over speech features on the frame grid (see :mod:`generator.model`); about 143k
    parameters by default. Held-out-speaker comparisons of these settings: ``docs/generator.md``."""

    features: FeatureKind = Field("whisper-tiny-en", description="speech features (generator.features)")
    hidden: int = Field(64, ge=8, le=1024)
    dilations: tuple[int, ...] = Field((1, 2, 4, 8), min_length=1, description="one residual block each")
    kernel: Literal[3, 5, 7] = Field(3, description="odd: blocks keep their length")
    dropout: float = Field(0.3, ge=0, lt=1)
    input_dropout: float = Field(0.3, ge=0, lt=1, description="dropout on the input features")
    neutral_style: bool = Field(
        True,
        description="scale each channel's motion by the neutral pose: the speaker's resting face as a style code",
    )


class TrainConfig(_Settings):
    """The training recipe of ``curate train``."""

    model: ModelConfig = ModelConfig()
    steps: int = Field(600, ge=1, description="optimizer steps in all (a resumed run goes on to this)")
    batch_size: int = Field(32, ge=1)
    window_s: float = Field(2.0, gt=0, description="length of the random training windows, seconds")
    lr: float = Field(1e-3, gt=0, description="peak learning rate (AdamW), linear warm-up then cosine")
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    lip_weight: float = Field(3.0, ge=1, description="loss weight of lip channels; others weigh 1")
    velocity_weight: float = Field(1.0, ge=0, description="weight of the frame-to-frame velocity term")
    dead_below: float = Field(
        0.005, ge=0, description="channels whose std over the training frames is below this are dead"
    )
    shuffle_buffer: int = Field(256, ge=1, description="windows held for shuffling")
    workers: int = Field(0, ge=0, description="DataLoader worker processes")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints (and validation)")
