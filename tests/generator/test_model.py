"""Features, model and loss: sizes, timing on the frame grid, neutral, dead channels and gain,
and what the loss weighs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.checkpoint import load_checkpoint, save_checkpoint
from generator.config import ModelConfig, TrainConfig
from generator.features import FrameFeatures
from generator.losses import blendshape_loss, channel_weights
from generator.model import Generator
from generator.train import learning_rate
from manifests.schema import SHARD_BLENDSHAPE_NAMES as NAMES

MEAN = torch.linspace(0.02, 0.6, len(NAMES))


def test_default_model_is_small() -> None:
    assert 5e4 <= Generator(ModelConfig(), MEAN).n_parameters() <= 2e5


def test_log_mel_features_are_on_the_frame_grid_and_centred() -> None:
    audio = np.zeros(16000, np.float32)
    audio[8000] = 1.0  # a click at 0.5 s: frame 15 at 30 fps
    features = FrameFeatures("log-mel")(audio, 30.0, 30)
    assert features.shape == (30, 80)
    energy = features.sum(1)
    assert list(np.flatnonzero(energy > energy.mean())) == [14, 15, 16], "smoothed over 3 frames about 15"
    np.testing.assert_allclose(features.mean(0), 0, atol=1e-4)


def test_an_untrained_model_predicts_the_neutral_given() -> None:
    model = Generator(ModelConfig(features="log-mel", hidden=32, dilations=(1, 2)), MEAN).eval()
    features = torch.randn(2, 45, 80)
    assert model(features).shape == (2, 45, len(NAMES))
    assert torch.allclose(model.animate(features), MEAN.expand(2, 45, -1), atol=1e-6)
    mine = torch.full((len(NAMES),), 0.3)
    assert torch.allclose(model.animate(features, mine), mine.expand(2, 45, -1), atol=1e-6)


def test_dead_channels_stay_at_the_neutral_and_the_gain_scales_the_motion() -> None:
    torch.manual_seed(0)
    model = Generator(ModelConfig(features="log-mel", hidden=32, dilations=(1,)), MEAN).eval()
    torch.nn.init.normal_(model.head.weight)
    features = torch.randn(1, 20, 80)
    free = model(features)
    model.live[3] = 0
    model.gain[5] = 0.5
    tempered = model(features)
    assert free[..., 3].abs().max() > 0 and (tempered[..., 3] == 0).all()
    assert torch.allclose(tempered[..., 5], 0.5 * free[..., 5])
    assert torch.allclose(tempered[..., 7], free[..., 7])


def test_the_neutral_pose_scales_each_channels_motion_only_when_asked() -> None:
    torch.manual_seed(0)
    spread = torch.full((len(NAMES),), 0.05)
    spread[0] = 0.0  # a channel every training speaker rests alike: left out of the code, not divided by 0
    features = torch.randn(2, 20, 80)
    rested = MEAN.clone()
    rested[NAMES.index("mouthSmileLeft")] += 0.1
    for styled in (True, False):
        config = ModelConfig(features="log-mel", hidden=32, dilations=(1,), neutral_style=styled)
        model = Generator(config, MEAN, neutral_scale=spread).eval()
        torch.nn.init.normal_(model.head.weight)
        if styled:
            torch.nn.init.normal_(model.style.weight)
        default = model(features)
        assert torch.equal(model(features, MEAN), default), "the default neutral is a zero style code"
        moved = model(features, torch.stack([rested, MEAN]))
        assert torch.isfinite(model(features, MEAN + 1.0)).all()
        assert torch.equal(moved[1], default[1]), "each window reads its own neutral"
        factor = moved[0] / default[0]
        if styled:  # one factor per channel in (0, 2), the same on every frame: timing stays the speech's
            assert torch.allclose(factor, factor[:1].expand_as(factor), atol=1e-4)
            assert not torch.allclose(factor, torch.ones_like(factor)) and 0 < factor.min() < factor.max() < 2
        else:
            assert torch.equal(moved, default)


def test_a_run_from_before_the_style_code_loads_as_it_was_trained(tmp_path) -> None:
    config = TrainConfig(model=ModelConfig(neutral_style=False))
    model = Generator(config.model, MEAN)
    written = config.model_dump(mode="json")
    del written["model"]["neutral_style"]  # runs of then did not name it
    state = {"step": 1, "model": model.state_dict(), "config": written, "names": list(NAMES), "fps": 30.0,
             "sample_rate_hz": 16000, "export": str(tmp_path)}  # fmt: skip
    save_checkpoint(tmp_path, state)
    restored = load_checkpoint(tmp_path)
    assert restored.config.model.neutral_style is False and not hasattr(restored.model, "style")


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
    torch.nn.init.normal_(model.head.weight)
    features = torch.randn(2, 60, 384)
    with torch.no_grad():
        cpu = model.animate(features)
        gpu = model.cuda().animate(features.cuda()).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), atol=1e-3)
