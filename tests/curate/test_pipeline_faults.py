"""An extractor that raises: recorded as a row and the run goes on, or raised in strict mode.

The real extractors cannot be made to raise on demand, so a subclass injects the fault (in this
process: the sequential executor).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from curate.config import Config, ConfigError, RayConfig, RunConfig, SegmentConfig
from curate.query import query
from curate.run import build_pipeline, run
from extractors import registry
from extractors.base import ClipRef, Extraction
from extractors.speech import SpeechExtractor
from manifests import DatasetRoot


class BrokenSpeech(SpeechExtractor):
    def setup(self) -> None:  # no model needed to fail
        pass

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        raise RuntimeError("decoder exploded")


@pytest.fixture
def broken_speech(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(registry.EXTRACTORS, "speech", BrokenSpeech)


def test_unexpected_error_is_recorded_and_the_run_goes_on(tmp_path, video, broken_speech) -> None:
    config = Config(run=RunConfig(extractors=["speech"], executor="sequential"))
    summary = run(
        [str(video("vr_face_3.mp4")), str(video("vr_face_5.mp4"))], tmp_path, config, progress=False
    )
    assert summary.videos_processed == 2
    assert summary.failures == {"extractor_error": 2}
    rows = query(tmp_path, "select stage, message from failures").to_pylist()
    assert rows == [{"stage": "speech", "message": "extractor_error: RuntimeError: decoder exploded"}] * 2


def test_strict_mode_raises(tmp_path, video, broken_speech) -> None:
    config = Config(run=RunConfig(extractors=["speech"], strict=True, executor="sequential"))
    with pytest.raises(RuntimeError, match="decoder exploded"):
        run([str(video("vr_face_3.mp4"))], tmp_path, config, progress=False)
    assert not (tmp_path / "videos").exists()  # nothing committed for the failed video


def test_stages_are_in_pipeline_order(tmp_path) -> None:
    names = build_pipeline(Config(), DatasetRoot(tmp_path)).stage_names
    assert names == ["probe", "segment", "face", "speech", "fingerprint", "sync", "emotion", "quality"]


def test_an_extractor_runs_after_what_it_reads_in_the_same_pool() -> None:
    with pytest.raises(ConfigError, match="'sync' reads 'face', which must come before it"):
        build_pipeline(
            Config(run=RunConfig(extractors=["speech", "sync", "face"])), DatasetRoot("/nonexistent")
        )
    with pytest.raises(ConfigError, match="own_pool: 'face' cannot have its own pool"):
        build_pipeline(Config(ray=RayConfig(own_pool=["face"])), DatasetRoot("/nonexistent"))


def test_a_shot_shorter_than_min_clip_is_recorded_and_not_extracted(tmp_path, video) -> None:
    config = Config(
        run=RunConfig(extractors=["face"], executor="sequential", strict=True),
        segment=SegmentConfig(min_clip_s=5.0, max_clip_s=10.0),
    )
    summary = run([str(video("vr_face_5.mp4"))], tmp_path / "root", config, progress=False)
    rows = query(
        tmp_path / "root",
        "select c.errors, c.face_detect_rate, t.blendshapes from clips c join tracks t using (clip_id)",
    ).to_pylist()
    assert len(rows) == 1  # the 4.9 s video is one shot, under 5 s
    assert dict(rows[0]["errors"]) == {"segment": "too_short: 4.88 s, under [segment] min_clip_s 5"}
    assert rows[0]["face_detect_rate"] is None and rows[0]["blendshapes"] is None
    assert summary.failures == {"too_short": 1}
