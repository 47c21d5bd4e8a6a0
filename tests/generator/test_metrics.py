"""The metrics give known answers on made-up curves."""

from __future__ import annotations

import numpy as np
import pytest

from generator import metrics
from generator.channels import group_indices
from generator.evaluate import delayed, fitted_to, score
from manifests.schema import SHARD_BLENDSHAPE_NAMES as NAMES

FPS = 30.0


def speech_like(n: int = 300, seed: int = 0) -> np.ndarray:
    """(n, 51) smooth random curves in [0, 1], syllable-rate bumps on the mouth."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n + 40, len(NAMES)))
    kernel = np.hanning(9) / np.hanning(9).sum()
    smooth = np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="same"), 0, noise)[20:-20]
    return 1 / (1 + np.exp(-3 * smooth))


def test_channel_groups_by_name() -> None:
    lip = {NAMES[i] for i in group_indices(NAMES, "lip")}
    upper = {NAMES[i] for i in group_indices(NAMES, "upper")}
    assert {"jawOpen", "jawLeft", "mouthClose", "mouthSmileLeft"} <= lip
    assert {"browInnerUp", "eyeBlinkLeft", "eyeSquintRight", "eyeWideLeft"} <= upper
    assert not {"cheekPuff", "noseSneerLeft", "eyeLookUpLeft"} & (lip | upper)
    assert len(lip) == 27 and len(upper) == 11


def test_lve_and_mve_are_frame_mean_l2_errors() -> None:
    truth = speech_like()
    lip = group_indices(NAMES, "lip")
    off = truth.copy()
    off[:, lip] += 0.1
    assert metrics.lve_bs(off, truth, NAMES) == pytest.approx(0.1 * np.sqrt(len(lip)))
    assert metrics.mve_bs(off, truth) == pytest.approx(0.1 * np.sqrt(len(lip)))
    brow = truth.copy()
    brow[:, NAMES.index("browInnerUp")] += 0.5
    assert metrics.lve_bs(brow, truth, NAMES) == 0 and metrics.mve_bs(brow, truth) == pytest.approx(0.5)


def test_fdd_is_upper_face_motion_missing_from_the_prediction() -> None:
    truth = speech_like()
    upper = group_indices(NAMES, "upper")
    held = np.tile(truth.mean(0), (len(truth), 1))
    assert metrics.fdd_bs(truth, truth, NAMES) == 0
    assert metrics.fdd_bs(held, truth, NAMES) == pytest.approx(truth[:, upper].std(0).mean())
    assert metrics.fdd_bs(truth, held, NAMES) < 0, "more motion than the truth: negative"


@pytest.mark.parametrize("shift", [-4, -1, 1, 2, 7])
def test_lag_of_a_shifted_copy_is_the_shift(shift: int) -> None:
    a = metrics.aperture(speech_like(), NAMES)
    pred = np.roll(a, shift)
    lag = metrics.lag_frames(pred, a)
    assert lag is not None and lag[0] == shift and lag[1] > 0.95


def test_lag_of_a_held_pose_is_undefined() -> None:
    assert metrics.lag_frames(np.full(100, 0.3), metrics.aperture(speech_like(100), NAMES)) is None


def test_extrema_of_a_cosine_and_a_plateau() -> None:
    t = np.arange(120)
    maxima, minima = metrics.extrema(np.cos(2 * np.pi * t / 30))
    np.testing.assert_array_equal(maxima, [30, 60, 90])  # not 0: never at the ends
    np.testing.assert_array_equal(minima, [15, 45, 75, 105])
    maxima, minima = metrics.extrema(np.repeat([0.0, 1.0, 0.0], 10))  # a plateau: its first frame
    assert list(maxima) == [10] and list(minima) == [20]


@pytest.mark.parametrize("shift", [1, 2, 4])
def test_mtm_of_a_shifted_copy_is_the_shift_in_ms(shift: int) -> None:
    a = metrics.aperture(speech_like(seed=4), NAMES)
    assert metrics.mtm_ms(a, a, FPS) == 0
    assert metrics.mtm_ms(delayed(a[:, None], shift)[:, 0], a, FPS) == pytest.approx(
        shift / FPS * 1000, rel=0.1
    )


def test_mtm_without_extrema_in_the_prediction_is_undefined() -> None:
    assert metrics.mtm_ms(np.full(100, 0.2), metrics.aperture(speech_like(100), NAMES), FPS) is None


def test_jitter_against_ground_truth() -> None:
    truth = speech_like()
    assert metrics.jitter(truth, truth) == pytest.approx(1.0)
    shaky = truth + 0.05 * (-1) ** np.arange(len(truth))[:, None]
    assert metrics.jitter(shaky, truth) > 2
    assert metrics.jitter(np.tile(truth[0], (len(truth), 1)), truth) == 0


def test_diversity_is_rms_distance_between_frames() -> None:
    assert metrics.diversity([np.array([[0.0], [1.0]])]) == pytest.approx(np.sqrt(0.5))
    same = [np.zeros((10, 3)), np.zeros((5, 3))]
    assert metrics.diversity(same) == 0
    rng = np.random.default_rng(1)
    frames = rng.random((60, 4))
    pairwise = np.mean([np.sum((x - y) ** 2) for x in frames for y in frames])
    assert metrics.diversity([frames[:25], frames[25:]]) == pytest.approx(np.sqrt(pairwise))


def test_baseline_helpers() -> None:
    truth = speech_like(10)
    late = delayed(truth, 2)
    np.testing.assert_array_equal(late[2:], truth[:-2])
    np.testing.assert_array_equal(late[:2], truth[[0, 0]])
    assert fitted_to(truth, 25).shape == (25, 51)
    np.testing.assert_array_equal(fitted_to(truth, 25)[10:20], truth)


def test_score_ranks_a_delayed_truth_by_its_delay() -> None:
    truths = [speech_like(200, seed) for seed in range(3)]
    rows = {k: score([delayed(t, k) for t in truths], truths, NAMES, FPS) for k in (0, 1, 4)}
    assert rows[0]["LVE_BS"] == 0 and rows[0]["MTM_ms"] == 0 and rows[0]["lag_frames"] == 0
    assert rows[0]["LVE_BS"] < rows[1]["LVE_BS"] < rows[4]["LVE_BS"]
    assert rows[1]["lag_frames"] == 1 and rows[4]["lag_frames"] == 4
    assert rows[4]["MTM_ms"] == pytest.approx(4 / FPS * 1000, rel=0.1)


def test_phonetic_error_leaves_expression_channels_out() -> None:
    truth = speech_like()
    smiling = truth.copy()
    smiling[:, [NAMES.index("mouthSmileLeft"), NAMES.index("mouthSmileRight")]] += 0.3
    assert metrics.pve_bs(smiling, truth, NAMES) == 0.0  # a smile is not a phone
    assert metrics.lve_bs(smiling, truth, NAMES) == pytest.approx(0.3 * np.sqrt(2))
    jaw = truth.copy()
    jaw[:, NAMES.index("jawOpen")] += 0.1
    assert metrics.pve_bs(jaw, truth, NAMES) == pytest.approx(0.1)


@pytest.mark.parametrize(("shift", "within"), [(0, True), (1, True), (3, False)])
def test_closures_are_matched_within_one_frame(shift: int, within: bool) -> None:
    t = np.arange(300)
    truth = 0.5 + 0.4 * np.cos(2 * np.pi * t / 25)  # a closure every 25 frames
    matched, total = metrics.closures(np.roll(truth, shift), truth)
    assert total >= 10
    assert matched == (total if within else 0)
