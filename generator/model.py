"""The speech -> blendshape model: a non-causal dilated TCN over speech features on the frame grid.

Features (batch, frames, dim) (:mod:`generator.features`, one row per blendshape frame) -> input
dropout -> convolution to ``hidden`` -> residual blocks (layer norm, dilated convolution, GELU,
1x1 convolution) -> one value per channel: the **motion**, the offset from the speaker's neutral
pose. The animation is ``clip(neutral + motion, 0, 1)`` with a neutral the user gives (a clip's
own, from the shards) or :attr:`Generator.default_neutral`, the training clips' mean neutral.

With ``neutral_style`` (the default) that neutral is also a style code: its departure from the
default neutral in units of the training clips' spread (:attr:`Generator.neutral_scale`) sets,
through one linear map, a factor in (0, 2) on each channel's motion. How far a speaker's mouth
moves depends on how it rests (a resting pucker or smile has room to go one way); when it moves
stays the speech's alone. On training speakers held out it lowers the phonetic-channel error by
4 % (docs/generator.md); with the default neutral every factor is 1 at the start of training.

Two buffers set after the gradient steps temper the motion per channel:

- ``live``: 0 for dead channels (barely moving over the training corpus: no signal to learn,
  only noise), masked out of the loss and predicted at the neutral;
- ``gain``: the least-squares scale of each channel's motion on held-out speakers (the val
  split), clipped to [0, 1]: channels the audio does not predict for new speakers (a smile)
  shrink towards the neutral instead of adding error.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generator.config import ModelConfig
from generator.features import FEATURE_DIMS

#: Channels whose neutral spreads less than this over the training clips (0.01: a tenth of a
#: typical moving channel's spread) are left out of the style code: their differences are noise.
MIN_NEUTRAL_SCALE = 0.01


class _ChannelNorm(nn.LayerNorm):
    """Layer norm over the channels of (batch, channels, T)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _Block(nn.Module):
    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = _ChannelNorm(hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(hidden, hidden, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.mix(F.gelu(self.conv(self.norm(x)))))


class Generator(nn.Module):
    """Features (batch, n_frames, dim) -> motion (batch, n_frames, n_channels), see the module doc.

    ``default_neutral`` (n_channels,): the neutral used when none is given; ``scale`` (dim,): the
    features' standard deviation over the training frames (inputs are divided by it);
    ``neutral_scale`` (n_channels,): the spread of the training clips' neutrals (only with
    ``neutral_style``; channels under :data:`MIN_NEUTRAL_SCALE` read 0).
    """

    default_neutral: torch.Tensor  # (n_channels,)
    scale: torch.Tensor  # (dim,)
    live: torch.Tensor  # (n_channels,) 1 or 0
    gain: torch.Tensor  # (n_channels,) in [0, 1]
    neutral_scale: torch.Tensor  # (n_channels,) with neutral_style only

    def __init__(
        self,
        config: ModelConfig,
        default_neutral: torch.Tensor,
        scale: torch.Tensor | None = None,
        neutral_scale: torch.Tensor | None = None,
    ):
        super().__init__()
        self.config = config
        n_channels, dim = len(default_neutral), FEATURE_DIMS[config.features]
        self.register_buffer("default_neutral", default_neutral.float().clone())
        self.register_buffer("scale", torch.ones(dim) if scale is None else scale.float().clone())
        self.register_buffer("live", torch.ones(n_channels))
        self.register_buffer("gain", torch.ones(n_channels))
        self.input_drop = nn.Dropout(config.input_dropout)
        self.stem = nn.Conv1d(dim, config.hidden, config.kernel, padding=config.kernel // 2)
        self.blocks = nn.Sequential(
            *(_Block(config.hidden, config.kernel, d, config.dropout) for d in config.dilations)
        )
        self.norm = _ChannelNorm(config.hidden)
        self.head = nn.Conv1d(config.hidden, n_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]
        if config.neutral_style:
            spread = torch.ones(n_channels) if neutral_scale is None else neutral_scale.float()
            self.register_buffer("neutral_scale", spread.clone())
            self.style = nn.Linear(n_channels, n_channels)
            nn.init.zeros_(self.style.weight)
            nn.init.zeros_(self.style.bias)

    def forward(self, features: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        """Motion (batch, n_frames, n_channels) for ``features`` (batch, n_frames, dim) of a
        speaker resting at ``neutral`` (n_channels,) or (batch, n_channels), default
        :attr:`default_neutral` (read only with ``neutral_style``)."""
        x = self.input_drop(features / self.scale).transpose(1, 2)
        motion = self.head(self.norm(self.blocks(self.stem(x)))).transpose(1, 2)
        if self.config.neutral_style:
            base = self.default_neutral if neutral is None else neutral
            spread = self.neutral_scale
            code = torch.where(spread >= MIN_NEUTRAL_SCALE, (base - self.default_neutral) / spread, 0.0)
            motion = motion * (1 + torch.tanh(self.style(code.expand(len(motion), -1))))[:, None, :]
        return motion * (self.live * self.gain)

    def animate(self, features: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        """Blendshapes (batch, n_frames, n_channels) in [0, 1]: ``neutral`` (n_channels,) or
        (batch, n_channels), default :attr:`default_neutral`, plus the motion."""
        base = self.default_neutral if neutral is None else neutral
        motion = self(features, neutral)
        if base.dim() == 2:
            base = base[:, None, :]
        return (base + motion).clamp(0.0, 1.0)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
