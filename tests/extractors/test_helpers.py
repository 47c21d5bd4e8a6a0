"""Pure helpers of the extractors: language choice, head pose from a face transform, face crops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from extractors.base import square_crop
from extractors.face.extractor import head_pose
from extractors.speech.extractor import pick_language

# What Whisper base reports for the English fixture r3p_May_5s.mp4 (top three languages).
R3P_PROBS = [("cy", 0.698), ("en", 0.280), ("la", 0.006)]


def test_language_is_chosen_among_the_allowed_ones() -> None:
    lang, prob = pick_language(R3P_PROBS, ["en", "de"])
    assert lang == "en" and prob == pytest.approx(1.0)
    assert pick_language(R3P_PROBS, [])[0] == "cy"  # all languages allowed
    assert pick_language(R3P_PROBS, ["fr"])[0] == "cy"  # none allowed present: fall back to all


def test_head_pose_angles_and_translation() -> None:
    assert head_pose(np.eye(4)) == pytest.approx([0, 0, 0, 0, 0, 0])
    yaw = math.radians(20)
    m = np.eye(4)
    m[:3, :3] = [[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]]
    m[:3, 3] = [1.0, -2.0, -30.0]
    assert head_pose(m) == pytest.approx([20, 0, 0, 1.0, -2.0, -30.0])


def test_a_face_crop_is_a_square_copy_inside_the_frame_and_repeats_edges_beyond_it() -> None:
    frame = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3)
    inside, box = square_crop(frame, (0.4, 0.4, 0.5, 0.6), margin=0.1)  # a 20 px box, 24 px crop
    assert box == (80, 40, 100, 60) and inside.shape == (24, 24, 3)
    assert np.array_equal(inside, frame[38:62, 78:102]) and not np.shares_memory(inside, frame)
    edge, _ = square_crop(frame, (0.0, 0.0, 0.1, 0.2), margin=0.1)  # 2 px beyond the top-left corner
    assert edge.shape == (24, 24, 3)
    assert np.array_equal(edge[:3, 3], frame[[0, 0, 0], 1])  # rows above the frame repeat its first
    assert np.array_equal(edge[3:, 3:], frame[1:22, 1:22])
