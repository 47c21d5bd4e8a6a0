"""The audio -> blendshape model: a non-causal dilated TCN over log-mel frames.

Log-mel at 100 Hz -> strided convolution to 50 Hz (position ``j`` centred at ``j / 50`` s) ->
residual blocks (layer norm, dilated convolution, GELU, 1x1 convolution) -> one logit per
channel -> linear interpolation onto the frame grid (frame ``k`` at ``k / fps`` s) -> sigmoid,
so outputs lie in [0, 1] like blendshapes. The head starts at zero weights with the bias at the
training mean pose: an untrained model predicts the mean pose.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generator.config import ModelConfig
from generator.features import FEATURE_RATE_HZ, LogMel

MODEL_RATE_HZ = FEATURE_RATE_HZ / 2


def at_frames(x: torch.Tensor, n_frames: int, fps: float, rate_hz: float) -> torch.Tensor:
    """Linear interpolation of ``x`` (batch, channels, T), position ``j`` at ``j / rate_hz`` s,
    onto frames ``k / fps`` s, k < ``n_frames``: (batch, channels, n_frames); ends held."""
    pos = torch.arange(n_frames, device=x.device, dtype=x.dtype) * (rate_hz / fps)
    last = x.shape[-1] - 1
    lo = pos.floor().clamp(0, last)
    frac = (pos - lo).clamp(0, 1)
    lo_i = lo.long()
    hi_i = (lo_i + 1).clamp(max=last)
    return x[..., lo_i] * (1 - frac) + x[..., hi_i] * frac


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
    """Audio (batch, samples) at 16 kHz -> blendshapes (batch, n_frames, n_channels) in [0, 1].

    ``mean_pose`` (n_channels,): the training mean, the untrained output and a baseline.
    """

    mean_pose: torch.Tensor  # (n_channels,)

    def __init__(self, config: ModelConfig, mean_pose: torch.Tensor):
        super().__init__()
        self.config = config
        n_channels = len(mean_pose)
        self.register_buffer("mean_pose", mean_pose.float().clone())
        self.features = LogMel(config.n_mels)
        self.stem = nn.Conv1d(config.n_mels, config.hidden, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(
            *(_Block(config.hidden, config.kernel, d, config.dropout) for d in config.dilations)
        )
        self.norm = _ChannelNorm(config.hidden)
        self.head = nn.Conv1d(config.hidden, n_channels, 1)
        nn.init.zeros_(self.head.weight)
        self.head.bias = nn.Parameter(torch.logit(self.mean_pose.clamp(1e-3, 1 - 1e-3)))

    def forward(self, audio: torch.Tensor, n_frames: int, fps: float) -> torch.Tensor:
        x = self.blocks(self.stem(self.features(audio)))
        logits = at_frames(self.head(self.norm(x)), n_frames, fps, MODEL_RATE_HZ)
        return torch.sigmoid(logits).transpose(1, 2)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
