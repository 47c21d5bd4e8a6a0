"""Features, model and loss: sizes, timing on the frame grid, and what the loss weighs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.config import ModelConfig, TrainConfig
from generator.features import LogMel
from generator.losses import blendshape_loss, channel_weights
from generator.model import MODEL_RATE_HZ, Generator, at_frames
from generator.train import learning_rate
from manifests.schema import SHARD_BLENDSHAPE_NAMES as NAMES

MEAN = torch.linspace(0.02, 0.6, len(NAMES))


def test_default_model_has_one_to_five_million_parameters() -> None:
    assert 1e6 <= Generator(ModelConfig(), MEAN).n_parameters() <= 5e6


def test_log_mel_frames_are_centred_every_10_ms_and_ignore_gain() -> None:
    audio = torch.zeros(1, 16000)
    audio[0, 8000] = 1.0  # a click at 0.5 s
    mel = LogMel(40)(audio)
    assert mel.shape == (1, 40, 101)
    assert int(mel[0].sum(0).argmax()) == 50
    noise = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(LogMel(40)(noise), LogMel(40)(0.25 * noise), atol=1e-3)


def test_outputs_land_on_the_frame_grid() -> None:
    x = torch.arange(100.0)[None, None]  # position j at j / 50 s holds j
    frames = at_frames(x, 60, 30.0, MODEL_RATE_HZ)[0, 0]
    assert torch.allclose(frames, torch.arange(60) * MODEL_RATE_HZ / 30.0)
    assert at_frames(x, 200, 30.0, MODEL_RATE_HZ)[0, 0, -1] == 99, "past the end: the last value held"


def test_an_untrained_model_predicts_the_mean_pose() -> None:
    model = Generator(ModelConfig(hidden=32, dilations=(1, 2)), MEAN).eval()
    out = model(torch.randn(2, 24000), 45, 30.0)
    assert out.shape == (2, 45, len(NAMES))
    assert torch.allclose(out, MEAN.expand(2, 45, -1), atol=1e-5)


def test_loss_weighs_lips_and_velocity_and_skips_masked_frames() -> None:
    weights = channel_weights(NAMES, 3.0)
    target = torch.zeros(1, 10, len(NAMES))
    mask = torch.ones(1, 10)

    def error_on(name: str) -> torch.Tensor:
        pred = target.clone()
        pred[0, :, NAMES.index(name)] = 0.1
        return blendshape_loss(pred, target, mask, weights, velocity_weight=0.0)

    assert float(error_on("jawOpen") / error_on("browInnerUp")) == pytest.approx(3.0)
    spike = target.clone()
    spike[0, 4] = 1.0
    masked = mask.clone()
    masked[0, 4] = 0
    assert blendshape_loss(spike, target, masked, weights, velocity_weight=1.0) == 0
    still = blendshape_loss(spike, target, mask, weights, velocity_weight=0.0)
    assert blendshape_loss(spike, target, mask, weights, velocity_weight=1.0) > still > 0


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    config = TrainConfig(steps=100, warmup_steps=10, lr=1e-3)
    assert learning_rate(config, 0) == pytest.approx(1e-4, rel=0.01)
    assert learning_rate(config, 9) == pytest.approx(1e-3, rel=0.03)  # the cosine has begun
    assert learning_rate(config, 50) == pytest.approx(0.5e-3, rel=0.01)
    assert learning_rate(config, 100) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    model = Generator(ModelConfig(), MEAN).eval()
    audio = torch.randn(2, 32000)
    with torch.no_grad():
        cpu = model(audio, 60, 30.0)
        gpu = model.cuda()(audio.cuda(), 60, 30.0).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), atol=1e-3)
