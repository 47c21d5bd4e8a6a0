"""The recipe of docs/architecture.md ("Adding a signal"), followed as written: a new extractor
in its own module, one registration line, a rule on its column. Its column appears in the
schema and is filled by a real run; the rule judges it; rules on columns of extractors the run
leaves out are skipped, said so, and do not reject."""

from __future__ import annotations

import textwrap

import pytest

from curate.filter import in_effect, rules_off
from curate.query import query
from curate.run import run
from extractors.registry import column_owners, dataset_schemas
from settings import config as settings
from settings.config import Config, FilterConfig, RunConfig

#: The extractor module a user would write (extractors/loudness.py), whole.
LOUDNESS = '''
    """Loudness of a clip's speech: the RMS level of its 16 kHz audio, dBFS."""

    from collections.abc import Mapping
    from typing import Any

    import numpy as np
    import pyarrow as pa

    from extractors.base import ClipRef, Extraction, Extractor
    from ingest.media import read_audio
    from manifests.schema import field


    class LoudnessExtractor(Extractor):
        name = "loudness"
        version = "1"
        clip_fields = [field("loudness_db", pa.float64(), "RMS level of the clip's audio, dBFS")]
        track_fields = []

        def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
            if not clip.has_audio:
                return Extraction({"loudness_db": None}, failure=("no_audio", "the video has no audio"))
            audio = read_audio(clip.path, clip.start_s, clip.end_s).astype(np.float64)
            return Extraction({"loudness_db": float(10 * np.log10(np.mean(audio**2) + 1e-12))})
'''


@pytest.fixture
def loudness(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The module on the path and its one registration line in settings.config."""
    (tmp_path / "loudness_example.py").write_text(textwrap.dedent(LOUDNESS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(settings.EXTRACTOR_CLASSES, "loudness", "loudness_example:LoudnessExtractor")


@pytest.mark.slow  # a real run over two fixture videos
def test_a_new_extractor_and_rule_in_the_stated_files(loudness, tmp_path, video) -> None:
    assert "loudness_db" in dataset_schemas()["clips"].names
    assert column_owners()["loudness_db"] == "loudness"
    config = Config(
        run=RunConfig(extractors=["loudness"], executor="sequential", strict=True),
        filter=FilterConfig.model_validate({"rules": {"too_quiet": {"column": "loudness_db", "min": -30}}}),
    )
    summary = run(
        [str(video("vr_face_3.mp4")), str(video("vr_face_5.mp4"))], tmp_path / "root", config, progress=False
    )
    assert summary.filter is not None
    assert "too_quiet" not in summary.filter.rules_off
    assert summary.filter.rules_off["face_missing"] == "face"
    assert summary.filter.rules_off["noisy_audio"] == "quality"
    rows = query(
        tmp_path / "root",
        "select c.loudness_db, d.verdict, d.reasons from clips c join current_decisions d using (clip_id)",
    ).to_pylist()
    assert len(rows) == 2 and all(-40 < r["loudness_db"] < -5 for r in rows), rows
    for r in rows:
        assert set(r["reasons"]) <= {"too_quiet"}, "no rule on a column nobody measured rejects"
        assert (r["verdict"] == "reject") == (r["loudness_db"] < -30)


def test_an_unknown_extractor_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown extractor 'mouth'"):
        RunConfig(extractors=["face", "mouth"])


def test_rules_on_columns_of_extractors_the_run_leaves_out_are_off() -> None:
    config = Config(run=RunConfig(extractors=["face", "fingerprint"]))
    assert rules_off(config) == {
        "little_speech": "speech", "language_uncertain": "speech", "out_of_sync": "sync",
        "sync_offset": "sync", "face_too_small": "quality", "too_dark": "quality",
        "noisy_audio": "quality", "clipped_audio": "quality",
    }  # fmt: skip
    assert set(in_effect(config).active) == {"face_missing", "multiple_faces", "too_short"}
    assert in_effect(Config()) == Config().filter, "with every extractor on, every rule counts"
