"""Scores of the real fixture run: sync, emotion, quality, near-duplicates, and the verdicts that
``curate run`` appends at its end, checked against the known facts of the fixtures."""

from __future__ import annotations

import pytest

from extractors.emotion.fusion import EMOTION_CLASSES

SPEAKING = ("vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4")


@pytest.fixture(scope="module")
def clips(fixture_run) -> dict[str, dict]:
    """File name -> its first clip's row (with the run's own decision), for the fixture videos."""
    rows = fixture_run.sql(
        "select regexp_extract(v.uri, '[^/]+$') name, c.*, d.verdict, d.reasons, d.duplicate_of"
        " from clips c join videos v using (video_id) join decisions d using (clip_id)"
        " where c.clip_index = 0 and d.who = 'curate filter'"
        " and d.decision_set = (select min(decision_set) from decisions)"
    )
    return {r["name"]: r for r in rows}


def test_the_run_ends_with_the_fixture_verdicts(fixture_run, clips) -> None:
    summary = fixture_run.summary.filter
    assert summary is not None and summary.verdicts["accept"] == 5
    for name in (*SPEAKING, "geneface_zozo_radnerf.mp4"):
        if name != "lp_driving_d20.mp4":
            assert (clips[name]["verdict"], clips[name]["reasons"]) == ("accept", []), name
    # Its audio is measured 8 frames late with strong evidence: a person looks (docs/sync.md).
    assert (clips["lp_driving_d20.mp4"]["verdict"], clips["lp_driving_d20.mp4"]["reasons"]) == (
        "review",
        ["sync_offset"],
    )
    assert (clips["iplap_129.mp4"]["verdict"], clips["iplap_129.mp4"]["reasons"]) == ("reject", ["no_audio"])
    assert clips["lp_driving_d18.mp4"]["reasons"] == ["no_speech"]
    assert clips["lp_driving_d14.mp4"]["reasons"] == ["no_speech"]
    assert "no_face" in clips["moviepy_big_buck_bunny_0_30.webm"]["reasons"]


def test_the_aoc_pair_is_flagged_as_duplicates(clips) -> None:
    aoc = clips["sadtalker_WDA_AOC_000.mp4"]
    assert (aoc["verdict"], aoc["reasons"]) == ("reject", ["duplicate"])
    assert aoc["duplicate_of"] == clips["vr_face_3.mp4"]["clip_id"]  # kept: 44.1 kHz audio against 16 kHz
    assert [n for n, c in clips.items() if c["duplicate_of"]] == ["sadtalker_WDA_AOC_000.mp4"]


def test_speaking_clips_are_in_sync_with_the_default_model(clips) -> None:
    """The shipped model never saw these speakers; every speaking clip's own audio stands out of its
    null (p <= 0.05) and its offset is reported. Measured offsets (docs/sync.md): within 3 frames,
    but lp_driving_d20 at +8 (the same with every feature set tried)."""
    for name in (*SPEAKING, "sadtalker_WDA_AOC_000.mp4", "geneface_zozo_radnerf.mp4"):
        c = clips[name]
        assert c["sync_confidence"] >= 3.0 and c["sync_p_value"] <= 0.05, name
        assert c["sync_offset_frames"] == c["sync_peak_frames"], name
        assert abs(c["sync_offset_frames"]) <= (9 if name == "lp_driving_d20.mp4" else 3), name
        assert c["sync_frames"] >= 140, name
    assert clips["iplap_129.mp4"]["sync_confidence"] is None  # no audio to compare


def test_emotion_is_a_distribution_over_seven_classes(clips) -> None:
    for name in (*SPEAKING, "iplap_129.mp4"):
        c = clips[name]
        assert len(c["emotion_probs"]) == len(EMOTION_CLASSES) == 7
        assert sum(c["emotion_probs"]) == pytest.approx(1.0, abs=1e-4)
        top = EMOTION_CLASSES[c["emotion_probs"].index(max(c["emotion_probs"]))]
        assert c["emotion_confidence"] == pytest.approx(max(c["emotion_probs"]), abs=1e-6)
        assert c["emotion_dominant"] == (top if c["emotion_confidence"] >= 0.6 else None)
        assert c["emotion_intensity"] == pytest.approx(
            1 - c["emotion_probs"][EMOTION_CLASSES.index("neutral")], abs=1e-6
        )
        assert -1 <= c["emotion_valence"] <= 1 and -1 <= c["emotion_arousal"] <= 1
        assert c["emotion_frames"] == 16
        assert 0 <= c["emotion_expressiveness"] <= 1
        assert 0 < c["emotion_face_range"] < 1
    for name in SPEAKING:  # a voice: pitch moves by some semitones, the level by some dB
        assert 2 < clips[name]["emotion_pitch_range_st"] < 36, name
        assert 1 < clips[name]["emotion_energy_std_db"] < 20, name
    assert clips["iplap_129.mp4"]["emotion_pitch_range_st"] is None  # no audio: face term only


def test_quality_facts(fixture_run, clips) -> None:
    sizes = {
        r["name"]: r for r in fixture_run.sql("select regexp_extract(uri, '[^/]+$') name, height from videos")
    }
    for name in SPEAKING:
        c = clips[name]
        assert 0.2 * sizes[name]["height"] < c["quality_face_px"] < sizes[name]["height"], name
        assert 0.02 < c["quality_face_share"] < 1
        assert 20 < c["quality_brightness"] < 235 and c["quality_contrast"] > 10
        assert c["quality_sharpness"] > 10
        assert c["quality_snr_db"] > 15 and -40 < c["quality_loudness_db"] < 0
        assert c["quality_clipping"] < 0.001
        assert 0 < c["quality_jitter"] < 0.05 and c["quality_pose_range_deg"] < 45
        # MediaPipe leaves these near zero on every face (DESIGN.md).
        assert {"cheekPuff", "noseSneerLeft", "noseSneerRight"} <= set(c["quality_dead_channels"]), name
        assert "jawOpen" not in c["quality_dead_channels"]
    assert clips["lp_driving_d18.mp4"]["quality_loudness_db"] < -80  # the track of digital silence
