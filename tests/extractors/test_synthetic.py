"""The synthetic-face score: its cues on made-up frames and tracks, a real recording left alone,
and a frozen face (one real frame repeated, as a still-image animator at its laziest) sent to
review with its evidence."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from extractors.base import ClipRef
from extractors.face.extractor import FaceExtractor
from extractors.registry import make_config
from extractors.synthetic.extractor import CUES, REFERENCE, SyntheticExtractor, flicker, upper_face_motion
from filters.rules import check
from ingest.probe import probe
from manifests.schema import BLENDSHAPE_NAMES

BOX = (0.25, 0.2, 0.75, 0.8)


def test_texture_flicker_sees_noise_between_frames() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert flicker(frame, frame, BOX) == (0.0, 0.0)
    noisy = np.clip(frame.astype(int) + rng.normal(0, 20, frame.shape), 0, 255).astype(np.uint8)
    mouth, eyes = flicker(frame, noisy, BOX)
    assert 0.01 < mouth < 1 and 0.01 < eyes < 1


def test_upper_face_motion_is_brows_and_gaze_over_mouth() -> None:
    t = np.linspace(0, 6, 90)
    still = np.zeros((90, len(BLENDSHAPE_NAMES)))
    still[:, BLENDSHAPE_NAMES.index("jawOpen")] = 0.5 + 0.4 * np.sin(t)
    assert upper_face_motion(list(still)) == pytest.approx(0, abs=1e-9)
    alive = still.copy()
    alive[:, BLENDSHAPE_NAMES.index("browInnerUp")] = 0.3 + 0.2 * np.sin(3 * t)
    assert upper_face_motion(list(alive)) > 0.01
    assert upper_face_motion([None, *still[:2]]) is None  # fewer than three frames with a face


def test_reference_signs_smooth_and_still_as_generated() -> None:
    typical = np.exp(REFERENCE.mean)
    assert np.allclose(REFERENCE.z(typical), 0, atol=1e-3)
    assert (REFERENCE.z(typical / 20) > 1).all(), "less flicker and motion than real video: positive"
    assert REFERENCE.probability(3.0) > REFERENCE.probability(0.0) > REFERENCE.probability(-3.0)


def test_too_few_face_frames_is_not_scored(tmp_path: Path) -> None:
    clip = ClipRef(tmp_path / "unused.mp4", "v", "c", 0.0, 4.0, 30.0, False)
    out = SyntheticExtractor(make_config()).extract(
        clip, {"face_box": [None] * 120, "blendshapes": [None] * 120}
    )
    assert out.clip["synthetic_score"] is None
    assert out.clip["synthetic_skipped"].startswith("few_face_frames")


def _scored(path: Path) -> dict:  # type: ignore[type-arg]
    config = make_config()
    face = FaceExtractor(config)
    face.setup()
    clip = ClipRef(path, "v", "c", 0.0, min(float(probe(path).facts["duration_s"]), 6.0), 25.0, False)
    try:
        return SyntheticExtractor(config).extract(clip, face.extract(clip, {}).track).clip
    finally:
        face.close()


@pytest.mark.slow
def test_real_recording_passes_and_frozen_face_goes_to_review(video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rule = make_config().filter.rules["synthetic_face"]
    real = _scored(video("vr_face_3.mp4"))
    assert len(real["synthetic_cue_z"]) == len(CUES) and np.isfinite(real["synthetic_cue_z"]).all()
    assert real["synthetic_score"] < 0.6 and check(rule, real["synthetic_score"]) == "pass"

    if not shutil.which("ffmpeg"):
        pytest.fail("ffmpeg is needed (scripts/setup.sh installs it)")
    frozen = tmp_path / "frozen.mp4"
    done = subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(video("vr_face_3.mp4")), "-vf",
         "select=eq(n\\,30),loop=loop=150:size=1:start=0,setpts=N/25/TB", "-t", "5", "-r", "25",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(frozen)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    still = _scored(frozen)
    assert still["synthetic_score"] > 0.9 and check(rule, still["synthetic_score"]) == "review"
    # No texture changes between frames; the landmarker's own noise still moves brows and mouth.
    assert still["synthetic_strongest"] in ("mouth_flicker", "eye_flicker")
    assert min(still["synthetic_cue_z"][:2]) > 3
