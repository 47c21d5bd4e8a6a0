"""Clip planning (pure) and the silence and shot measurements it plans from."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.media import energy_envelope_db
from ingest.probe import probe
from ingest.segment import SegmentParams, clip_id, plan_clips, shot_changes, silences

P = SegmentParams(min_clip_s=2.0, max_clip_s=20.0)


def test_short_video_is_one_clip() -> None:
    (clip,) = plan_clips(5.0, [], [], P)
    assert (clip.start_s, clip.end_s, clip.cut_start, clip.cut_end) == (0.0, 5.0, "start", "end")


def test_long_stretch_cuts_at_the_longest_silence_within_max() -> None:
    plans = plan_clips(30.0, [], [(8.0, 8.3), (14.0, 15.0), (25.0, 27.0)], P)
    assert [(p.start_s, p.end_s) for p in plans] == [(0.0, 14.5), (14.5, 30.0)]
    assert plans[0].cut_end == "silence" and plans[1].cut_start == "silence"


def test_no_silence_cuts_at_max_length() -> None:
    plans = plan_clips(45.0, [], [], P)
    assert [(p.start_s, p.end_s) for p in plans] == [(0.0, 20.0), (20.0, 40.0), (40.0, 45.0)]
    assert all(p.end_s - p.start_s <= P.max_clip_s for p in plans)


def test_no_cut_leaves_a_tail_shorter_than_min_clip() -> None:
    """A 20.08 s video without silence once gave a 0.08 s last clip."""
    plans = plan_clips(20.08, [], [], P)
    assert [(p.start_s, p.end_s) for p in plans] == [(0.0, 18.08), (18.08, 20.08)]
    assert all(p.end_s - p.start_s >= P.min_clip_s for p in plans)


def test_shots_always_cut_and_clips_tile_the_video() -> None:
    plans = plan_clips(30.0, [11.8, 23.0], [], P)
    assert [(p.start_s, p.end_s) for p in plans] == [(0.0, 11.8), (11.8, 23.0), (23.0, 30.0)]
    assert [p.cut_end for p in plans] == ["shot", "shot", "end"]


def test_clip_ids_are_deterministic() -> None:
    assert clip_id("abc", 1.5, 6.25) == "abc_00001500_00006250"
    assert clip_id("abc", 1.5, 6.25) == clip_id("abc", 1.5, 6.25)


def test_silences_in_an_envelope() -> None:
    envelope = np.full(300, -20.0)
    envelope[100:150] = -80.0  # 0.5 s of silence at 1.0 s
    envelope[200:210] = -80.0  # 0.1 s: too short
    assert silences(envelope, P) == [(1.0, 1.5)]


def test_digital_silence_fixture_is_all_quiet(video) -> None:
    envelope = energy_envelope_db(video("lp_driving_d18.mp4"))
    assert envelope.max() < -60
    assert len(envelope) == pytest.approx(7.2 * 100, abs=3)


@pytest.mark.parametrize(
    ("name", "has_cuts"), [("moviepy_big_buck_bunny_0_30.webm", True), ("vr_face_3.mp4", False)]
)
def test_shot_changes(video, name: str, has_cuts: bool) -> None:
    duration = probe(video(name)).facts["duration_s"]
    cuts = shot_changes(video(name), duration, P)
    assert bool(cuts) is has_cuts
