"""Schemas are written, not inferred; parts are atomic; DuckDB views are typed even when empty."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from extractors.registry import dataset_schemas, extractor_classes
from manifests.schema import BLENDSHAPE_NAMES, FAILURE_REASONS, error_code, error_text
from manifests.store import DatasetRoot, SchemaMismatch
from manifests.views import connect

SCHEMAS = dataset_schemas()


def test_extractor_columns_are_namespaced_and_documented() -> None:
    for name, cls in extractor_classes().items():
        for f in cls.clip_fields:
            assert f.name.startswith(name + "_"), f.name
        for f in [*cls.clip_fields, *cls.track_fields]:
            assert f.metadata and f.metadata[b"doc"]
    assert SCHEMAS["tracks"].metadata[b"blendshape_names"].decode().split(",") == list(BLENDSHAPE_NAMES)


def test_unknown_columns_and_missing_keys_are_refused(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    with pytest.raises(SchemaMismatch, match="not in the"):
        root.write_part("videos", "x", [{"video_id": "x", "uri": "u", "surprise": 1}], SCHEMAS["videos"])
    with pytest.raises(SchemaMismatch, match="must not be null"):
        root.write_part("videos", "x", [{"uri": "u"}], SCHEMAS["videos"])
    with pytest.raises(SchemaMismatch):
        root.write_part("videos", "x", [{"video_id": "x", "uri": "u", "width": "wide"}], SCHEMAS["videos"])
    assert not root.parts("videos")


def test_parts_are_replaced_atomically_and_leave_no_temporaries(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    row = {"video_id": "v1", "uri": "a.mp4", "errors": {"probe": "no_audio: none"}}
    root.write_part("videos", "v1", [row], SCHEMAS["videos"])
    root.write_part("videos", "v1", [{**row, "uri": "b.mp4"}], SCHEMAS["videos"])
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["part-v1.parquet"]
    table = pq.read_table(root.part_path("videos", "v1"))
    assert table.schema.equals(SCHEMAS["videos"], check_metadata=False)
    assert table.column("uri").to_pylist() == ["b.mp4"]
    assert [p.name for p in root.parts("videos")] == ["part-v1.parquet"]


def test_views_exist_and_are_typed_on_an_empty_root(tmp_path) -> None:
    con = connect(DatasetRoot(tmp_path), SCHEMAS)
    for view in ("videos", "clips", "tracks", "decisions", "failures", "current_decisions"):
        assert con.execute(f"select count(*) from {view}").fetchone() == (0,)
    columns = {r[0] for r in con.execute("describe clips").fetchall()}
    assert {"clip_id", "face_detect_rate", "speech_language", "errors"} <= columns


def test_error_text_uses_known_codes() -> None:
    assert error_code(error_text("no_face", "0 of 10 frames")) == "no_face"
    assert set(FAILURE_REASONS) >= {
        "no_face",
        "no_audio",
        "no_speech",
        "truncated",
        "empty_file",
        "unreadable",
    }
    with pytest.raises(ValueError):
        error_text("made_up", "x")
