"""An extractor that raises: recorded as a row and the run goes on, or raised in strict mode.

The real extractors cannot be made to raise on demand, so a subclass injects the fault (in this
process: the sequential executor).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from bench.media import damaged_copy, second_audio_copy, sideways_copy
from curate.query import query
from curate.run import build_pipeline, run
from extractors import registry
from extractors.base import ClipRef, Extraction
from extractors.registry import make_config
from extractors.speech.extractor import SpeechExtractor
from manifests import DatasetRoot
from settings.config import ConfigError, RayConfig, RunConfig, SegmentConfig


class BrokenSpeech(SpeechExtractor):
    def setup(self) -> None:  # no model needed to fail
        pass

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        raise RuntimeError("decoder exploded")


@pytest.fixture
def broken_speech(monkeypatch):  # type: ignore[no-untyped-def]
    real = registry.extractor_class
    monkeypatch.setattr(
        registry, "extractor_class", lambda name: BrokenSpeech if name == "speech" else real(name)
    )


def test_unexpected_error_is_recorded_and_the_run_goes_on(tmp_path, video, broken_speech) -> None:
    config = make_config(run=RunConfig(extractors=["speech"], executor="sequential"))
    summary = run(
        [str(video("vr_face_3.mp4")), str(video("vr_face_5.mp4"))], tmp_path, config, progress=False
    )
    assert summary.videos_processed == 2
    assert summary.failures == {"extractor_error": 2}
    rows = query(tmp_path, "select stage, message from failures order by message").to_pylist()
    log = f"logs/{summary.run_id}.log"
    assert rows == [
        {
            "stage": "speech",
            "message": f"extractor_error: {name}: RuntimeError: decoder exploded (traceback in {log})",
        }
        for name in ("vr_face_3.mp4", "vr_face_5.mp4")
    ]
    assert (tmp_path / log).read_text().count("Traceback") == 2


def test_strict_mode_raises(tmp_path, video, broken_speech) -> None:
    config = make_config(run=RunConfig(extractors=["speech"], strict=True, executor="sequential"))
    with pytest.raises(RuntimeError, match="decoder exploded"):
        run([str(video("vr_face_3.mp4"))], tmp_path, config, progress=False)
    assert not (tmp_path / "videos").exists()  # nothing committed for the failed video


def test_stages_are_in_pipeline_order(tmp_path) -> None:
    names = build_pipeline(make_config(), DatasetRoot(tmp_path)).stage_names
    assert names == [
        "probe",
        "segment",
        "face",
        "speech",
        "fingerprint",
        "sync",
        "emotion",
        "quality",
        "synthetic",
        "identity",
    ]


def test_an_extractor_runs_after_what_it_reads_in_the_same_pool() -> None:
    with pytest.raises(ConfigError, match="'sync' reads 'face', which must come before it"):
        build_pipeline(
            make_config(run=RunConfig(extractors=["speech", "sync", "face"])), DatasetRoot("/nonexistent")
        )
    with pytest.raises(ConfigError, match="own_pool: 'face' cannot have its own pool"):
        build_pipeline(make_config(ray=RayConfig(own_pool=["face"])), DatasetRoot("/nonexistent"))


def test_a_shot_shorter_than_min_clip_is_recorded_and_not_extracted(tmp_path, video) -> None:
    config = make_config(
        run=RunConfig(extractors=["face"], executor="sequential", strict=True),
        segment=SegmentConfig(min_clip_s=5.0, max_clip_s=10.0),
    )
    summary = run([str(video("vr_face_5.mp4"))], tmp_path / "root", config, progress=False)
    rows = query(
        tmp_path / "root",
        "select c.errors, c.face_detect_rate, t.blendshapes from clips c join tracks t using (clip_id)",
    ).to_pylist()
    assert len(rows) == 1  # the 4.9 s video is one shot, under 5 s
    assert dict(rows[0]["errors"]) == {
        "segment": "too_short: vr_face_5.mp4: 4.88 s, under [segment] min_clip_s 5"
    }
    assert rows[0]["face_detect_rate"] is None and rows[0]["blendshapes"] is None
    assert summary.failures == {"too_short": 1}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, video):  # type: ignore[no-untyped-def]
    """vr_face_1.mp4 with one second (2-3 s) of its AAC packets, and of its H.264 packets,
    overwritten by random bytes."""
    folder = tmp_path_factory.mktemp("damaged")
    src = video("vr_face_1.mp4")
    damaged_copy(src, folder / "audio_damaged.mp4", "audio", 2.0, 3.0)
    damaged_copy(src, folder / "video_damaged.mp4", "video", 2.0, 3.0)
    return folder


@pytest.mark.parametrize("executor", ["sequential", "ray"])
def test_damaged_packets_are_skipped_and_the_rest_of_the_file_is_used(tmp_path, damaged, executor) -> None:
    config = make_config(
        run=RunConfig(extractors=["face", "speech"], executor=executor),
        ray=RayConfig(workers=1),
    )
    summary = run([str(damaged)], tmp_path / "root", config, progress=False)
    assert summary.videos_processed == 2 and summary.failures == {}
    rows = query(
        tmp_path / "root",
        "select regexp_extract(v.uri, '[^/]+$') name, c.face_detect_rate, c.speech_text"
        " from clips c join videos v using (video_id) order by name",
    ).to_pylist()
    assert [r["name"] for r in rows] == ["audio_damaged.mp4", "video_damaged.mp4"]
    for r in rows:
        assert r["face_detect_rate"] >= 0.95, r
        assert "better at that" in r["speech_text"], r  # speech after the damaged second
    damage = query(
        tmp_path / "root",
        "select regexp_extract(v.uri, '[^/]+$') name, v.damaged_spans, c.damaged_s"
        " from clips c join videos v using (video_id) order by name",
    ).to_pylist()
    (span,) = damage[0]["damaged_spans"]  # the damaged second of audio, recorded where it is
    assert span["stream"] == "audio" and abs(span["start_s"] - 2.0) < 0.1 and abs(span["end_s"] - 3.0) < 0.1
    assert damage[0]["damaged_s"] == pytest.approx(1.0, abs=0.1)


def test_an_unexpected_error_in_segmentation_is_a_row_naming_the_file(tmp_path, video, monkeypatch) -> None:
    """The fault is injected (a real file that breaks segmentation is now decoded around)."""

    def explode(*args: Any, **kwargs: Any) -> list[float]:
        raise RuntimeError("shot detector exploded\nsecond line of the message")

    monkeypatch.setattr("curate.pipeline.shot_changes", explode)
    config = make_config(run=RunConfig(extractors=["face"], executor="sequential"))
    sources = [str(video("vr_face_5.mp4")), str(video("vr_face_3.mp4"))]
    summary = run(sources, tmp_path / "root", config, progress=False)
    assert summary.videos_failed == 2 and summary.failures == {"stage_error": 2}
    rows = query(
        tmp_path / "root", "select uri, stage, reason, message from failures order by uri"
    ).to_pylist()
    assert [(r["stage"], r["reason"]) for r in rows] == [("segment", "stage_error")] * 2
    message = rows[1]["message"]
    assert message.startswith(
        "stage_error: vr_face_5.mp4: RuntimeError: shot detector exploded (traceback in"
    )
    assert "\n" not in message
    log = (tmp_path / "root" / "logs").glob("*.log")
    assert "Traceback" in next(log).read_text()
    with pytest.raises(RuntimeError, match="exploded"):  # strict: raised, as tests want
        run(
            sources,
            tmp_path / "strict",
            make_config(run=RunConfig(extractors=["face"], executor="sequential", strict=True)),
            progress=False,
        )


@pytest.mark.slow  # real models over a whole video
def test_phone_rotation_is_honoured_and_the_default_audio_stream_is_used(tmp_path, video) -> None:
    """A copy stored on its side with a display matrix (as phones do), a copy whose first audio
    stream is digital silence while its second, the default one, has the speech, and one where
    neither is marked default."""
    src = video("vr_face_5.mp4")
    media = tmp_path / "media"
    sideways_copy(src, media / "sideways.mp4")
    second_audio_copy(src, video("lp_driving_d18.mp4"), media / "two_audio.mp4")
    second_audio_copy(src, video("lp_driving_d18.mp4"), media / "unmarked.mkv", mark_default=False)
    config = make_config(run=RunConfig(extractors=["face", "speech"], executor="sequential", strict=True))
    run([str(src), str(media)], tmp_path / "root", config, progress=False)
    rows = query(
        tmp_path / "root",
        "select regexp_extract(v.uri, '[^/]+$') name, v.rotation_deg, v.audio_stream, v.audio_streams,"
        " c.face_detect_rate, c.speech_text, c.errors,"
        " list_transform(t.head_pose, lambda p: p[3]) roll from clips c join videos v using (video_id)"
        " join tracks t using (clip_id)",
    ).to_pylist()
    found = {r["name"]: r for r in rows}
    original, side, two = found["vr_face_5.mp4"], found["sideways.mp4"], found["two_audio.mp4"]
    assert (side["rotation_deg"], original["rotation_deg"]) == (90, 0)
    assert side["face_detect_rate"] >= 0.95
    roll = np.nanmedian([r for r in side["roll"] if r is not None])
    assert abs(roll - np.nanmedian([r for r in original["roll"] if r is not None])) < 5  # upright, not -90
    assert (two["audio_stream"], two["audio_streams"]) == (2, 2)
    assert not two["errors"] and "regulation" in two["speech_text"]
    unmarked = found["unmarked.mkv"]  # no stream marked default: the first that is not silence
    assert (unmarked["audio_stream"], unmarked["audio_streams"]) == (2, 2)
    assert not unmarked["errors"] and "regulation" in unmarked["speech_text"]


@pytest.mark.slow  # real models over a whole video
def test_every_input_is_accounted_for_by_name(tmp_path, video) -> None:
    """Dangling and looping links become failures; a still image is not a video; a second copy
    of the same bytes is a row naming the input it duplicates."""
    import av

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.mp4").symlink_to(video("vr_face_5.mp4"))
    (folder / "copy.mp4").write_bytes(video("vr_face_5.mp4").read_bytes())
    (folder / "dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (folder / "loop_a.mp4").symlink_to(folder / "loop_b.mp4")
    (folder / "loop_b.mp4").symlink_to(folder / "loop_a.mp4")
    with av.open(str(video("vr_face_5.mp4"))) as container:
        frame = next(container.decode(video=0))
    frame.to_image().save(folder / "still.mp4", format="JPEG")  # a JPEG named like a video
    config = make_config(run=RunConfig(extractors=["face"], executor="sequential", strict=True))
    with pytest.warns(UserWarning, match="3 of 6 inputs cannot be read"):  # named up front
        summary = run([str(folder)], tmp_path / "root", config, progress=False)
    assert summary.inputs == 6
    rows = query(
        tmp_path / "root",
        "select regexp_extract(uri, '[^/]+$') name, outcome, regexp_extract(duplicate_of_uri, '[^/]+$') dup"
        " from inputs order by name",
    ).to_pylist()
    assert [(r["name"], r["outcome"], r["dup"]) for r in rows] == [
        ("copy.mp4", "processed", None),
        ("dangling.mp4", "failed", None),
        ("good.mp4", "duplicate", "copy.mp4"),
        ("loop_a.mp4", "failed", None),
        ("loop_b.mp4", "failed", None),
        ("still.mp4", "failed", None),
    ]
    failures = query(
        tmp_path / "root",
        "select regexp_extract(uri, '[^/]+$') name, reason, message from failures order by name",
    ).to_pylist()
    assert [(f["name"], f["reason"]) for f in failures] == [
        ("dangling.mp4", "missing_file"),
        ("loop_a.mp4", "missing_file"),
        ("loop_b.mp4", "missing_file"),
        ("still.mp4", "unreadable"),
    ]
    assert "is a link that leads to no file" in failures[0]["message"]
    assert "still image" in failures[3]["message"]
