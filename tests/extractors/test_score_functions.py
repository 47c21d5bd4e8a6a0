"""The pure parts of the scores on made-up signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.audio_features import frame_level_db, log_mel, pitch_hz
from extractors.emotion.extractor import expressiveness, face_range
from extractors.fingerprint.extractor import band_energies, fingerprint
from extractors.quality.extractor import audio_terms, tracks
from filters.duplicates import best_match, find_twins
from manifests.schema import BLENDSHAPE_NAMES

SR = 16_000


def tone(hz: float, seconds: float, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_audio_features_line_up_with_frames() -> None:
    audio = np.concatenate([np.zeros(SR, np.float32), tone(200, 1.0)])
    level = frame_level_db(audio, 30, 60)
    assert level[:25].max() < -100 and level[35:].min() > -10  # silence, then the tone
    assert log_mel(audio, 30, 60).shape == (60, 40)
    assert np.nanmedian(pitch_hz(audio, 30, 60)[35:]) == pytest.approx(200, rel=0.02)
    assert np.isnan(pitch_hz(audio, 30, 60)[:25]).all()


def test_quality_of_tracks_names_dead_and_saturated_channels() -> None:
    rng = np.random.default_rng(0)
    shapes = rng.uniform(0.1, 0.6, (100, 52))
    shapes[:, BLENDSHAPE_NAMES.index("cheekPuff")] = 0.001
    shapes[:, BLENDSHAPE_NAMES.index("eyeBlinkLeft")] = 1.0
    poses = [[10.0 * np.sin(i / 10), 0, 0, 0, 0, 0] for i in range(100)]
    out = tracks([*shapes.tolist(), None], [*poses, None])
    assert out["quality_dead_channels"] == ["cheekPuff"]
    assert out["quality_saturated_channels"] == ["eyeBlinkLeft"]
    assert 15 < out["quality_pose_range_deg"] <= 20
    smooth = tracks(np.tile(np.linspace(0, 1, 100)[:, None], 52).tolist(), poses)
    assert smooth["quality_jitter"] == pytest.approx(0, abs=1e-9)
    assert out["quality_jitter"] > 0.1


def test_audio_quality_sees_clipping_and_noise_floor() -> None:
    speechlike = np.concatenate([tone(220, 1.0, 0.3), np.full(SR, 1e-4, np.float32)])
    clean = audio_terms(speechlike, 30)
    assert clean["quality_clipping"] == 0 and clean["quality_snr_db"] > 60
    assert clean["quality_loudness_db"] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.5)
    clipped = audio_terms(np.clip(tone(220, 1.0, 2.0), -1, 1), 30)
    assert clipped["quality_clipping"] > 0.3


def test_expressiveness_terms() -> None:
    still = [[0.2] * 52] * 10
    assert face_range(still) == 0
    assert expressiveness(0.0, 0.0, 0.0) == 0
    assert expressiveness(0.5, 24.0, 16.0) == 1  # every term capped at 1
    assert expressiveness(0.125, None, None) == pytest.approx(0.5)
    assert expressiveness(None, None, None) is None


def test_a_re_encoded_copy_is_a_twin_and_other_audio_is_not() -> None:
    rng = np.random.default_rng(1)
    voice = np.convolve(rng.normal(size=8 * SR), np.ones(8) / 8, "same").astype(np.float32) * tone(
        3, 8.0, 1.0
    )
    noisy_copy = voice[SR // 2 :] + rng.normal(scale=0.01, size=len(voice) - SR // 2).astype(np.float32)
    other = np.convolve(rng.normal(size=8 * SR), np.ones(8) / 8, "same").astype(np.float32)
    prints = {k: fingerprint(band_energies(a)) for k, a in {"a": voice, "b": noisy_copy, "c": other}.items()}
    match = best_match(prints["a"], prints["b"], 125)
    assert match is not None and match.bit_error < 0.2
    assert match.offset_hops == round(-SR / 2 / 256)  # b starts half a second into a
    assert best_match(prints["a"], prints["c"], 125).bit_error > 0.4  # type: ignore[union-attr]
    twins = find_twins(prints, rank={"a": (2,), "b": (1,), "c": (3,)}.__getitem__)
    assert twins.keys() == {"b"} and twins["b"][0] == "a"  # a is the better source of the pair
