"""Container facts of the fixtures, from ../shared/fixtures/README.md (ffprobe)."""

from __future__ import annotations

import pytest

from ingest.probe import ProbeFailure, content_id, probe

# name: (duration_s, width, height, fps_nominal, video_codec, audio_sr_hz or None)
KNOWN = {
    "vr_face_3.mp4": (5.04, 590, 590, 25, "h264", 44100),
    "vr_face_5.mp4": (4.90, 524, 524, 25, "h264", 44100),
    "r3p_May_5s.mp4": (5.02, 512, 512, 25, "h264", 48000),
    "lp_driving_d20.mp4": (7.01, 480, 480, 25, "h264", 44100),
    "vr_face_1.mp4": (6.13, 700, 700, 30, "h264", 44100),
    "sadtalker_WDA_AOC_000.mp4": (8.06, 512, 512, 25, "mpeg4", 16000),
    "lp_driving_d18.mp4": (7.22, 480, 480, 30, "h264", 44100),
    "iplap_129.mp4": (9.00, 256, 256, 30, "mpeg4", None),
    "lp_driving_d14.mp4": (17.90, 512, 512, 30, "h264", 44100),
    "moviepy_big_buck_bunny_0_30.webm": (30.0, 1280, 720, 24, "vp8", 44100),
    "geneface_zozo_radnerf.mp4": (10.94, 512, 512, 25, "h264", 16000),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_probe_facts(video, name: str) -> None:
    duration, width, height, fps, codec, sr = KNOWN[name]
    facts = probe(video(name)).facts
    assert facts["duration_s"] == pytest.approx(duration, abs=0.1)
    assert (facts["width"], facts["height"]) == (width, height)
    assert facts["fps_nominal"] == pytest.approx(fps, abs=0.05)
    assert facts["video_codec"] == codec
    assert facts["has_audio"] is (sr is not None)
    assert facts["audio_sr_hz"] == sr
    assert facts["vfr"] is (name == "vr_face_1.mp4")
    if name != "vr_face_1.mp4":
        assert facts["fps_avg"] == pytest.approx(fps, rel=0.01)


def test_missing_audio_is_recorded_not_fatal(video) -> None:
    result = probe(video("iplap_129.mp4"))
    assert result.errors["probe"].startswith("no_audio:")


def test_duration_without_container_field_comes_from_packets(video) -> None:
    facts = probe(video("moviepy_big_buck_bunny_0_30.webm")).facts
    assert facts["n_frames"] == pytest.approx(30 * 24, abs=2)
    assert facts["duration_s"] == pytest.approx(30.0, abs=0.1)


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("truncated", "truncated"),
        ("zero_byte", "empty_file"),
        ("fake", "unreadable"),
        ("missing", "missing_file"),
    ],
)
def test_broken_files_fail_with_reason(broken, which: str, code: str) -> None:
    with pytest.raises(ProbeFailure) as info:
        probe(getattr(broken, which))
    assert info.value.code == code
    assert str(info.value).startswith(code + ":")


def test_content_id_ignores_the_name(video, broken) -> None:
    assert content_id(video("vr_face_3.mp4")) == content_id(broken.twin)
    assert content_id(video("vr_face_3.mp4")) != content_id(video("vr_face_5.mp4"))
