"""Training loss: channel-weighted MSE (lip channels heavier) plus a velocity term."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from generator.channels import group_indices


def channel_weights(names: Sequence[str], lip_weight: float) -> torch.Tensor:
    """Per channel: ``lip_weight`` for the lip group, 1 otherwise, scaled to mean 1; shape (n_channels,)."""
    weights = torch.ones(len(names))
    weights[group_indices(names, "lip")] = lip_weight
    return weights / weights.mean()


def blendshape_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    velocity_weight: float,
) -> torch.Tensor:
    """Weighted MSE over frames with ``mask`` 1, plus ``velocity_weight`` times the weighted MSE of
    frame-to-frame differences over pairs of such frames.

    ``pred``, ``target``: (batch, frames, channels); ``mask``: (batch, frames); ``weights``: (channels,).
    """
    position = ((pred - target) ** 2 * weights).mean(-1)
    loss = (position * mask).sum() / mask.sum().clamp(min=1)
    if velocity_weight:
        pair = mask[:, 1:] * mask[:, :-1]
        velocity = ((pred.diff(dim=1) - target.diff(dim=1)) ** 2 * weights).mean(-1)
        loss = loss + velocity_weight * (velocity * pair).sum() / pair.sum().clamp(min=1)
    return loss
