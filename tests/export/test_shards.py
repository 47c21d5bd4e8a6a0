"""`curate export` over the fixture run: the accepted clips become typed, streamable shards.

Fixture facts used: six clips are accepted (vr_face_3, vr_face_5, r3p_May_5s, vr_face_1,
lp_driving_d20, geneface_zozo_radnerf); sadtalker_WDA_AOC_000 is rejected as a duplicate of
vr_face_3. Every clip starts at 0 s of its video and is tracked at 30 fps.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.query import query
from export.shards import ExportError, ExportOptions, assign_splits, export, merge_duplicates
from extractors.registry import dataset_schemas
from ingest.media import SPEECH_SR_HZ
from manifests.schema import BLENDSHAPE_NAMES, SHARD_BLENDSHAPE_NAMES, shard_schema
from manifests.store import DatasetRoot, write_parquet_atomic


def shard_rows(export_dir: Path, columns: list[str] | None = None) -> list[dict]:
    return [
        row
        for path in sorted(export_dir.glob("*.parquet"))
        for row in pq.read_table(path, columns=columns).to_pylist()
    ]


@pytest.fixture(scope="module")
def root_copy(accepted_run, tmp_path_factory) -> Path:
    """A copy of the fixture run that tests may change (the shared root is left alone)."""
    root = tmp_path_factory.mktemp("export") / "root"
    shutil.copytree(accepted_run.root, root, ignore=shutil.ignore_patterns(".lock", "_staging", "exports"))
    return root


@pytest.fixture(scope="module")
def exported(curate, accepted_run) -> Path:
    """The default export of the fixture run, through the command line, two clips a row group."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    done = curate("export", str(accepted_run.root), "--name", name, "--clips-per-row-group", "2")
    assert done.returncode == 0, done.stderr
    path = accepted_run.root / "exports" / name
    assert done.stdout.splitlines()[0] == str(path)
    return path


def test_accepted_clips_only_with_an_explicit_schema(exported, accepted_run, speaking_videos) -> None:
    rows = shard_rows(exported, ["clip_id", "source_uri", "split", "n_frames"])
    assert {Path(r["source_uri"]).name for r in rows} == speaking_videos
    accepted = accepted_run.sql("select clip_id from current_decisions where verdict = 'accept'")
    assert {r["clip_id"] for r in rows} == {r["clip_id"] for r in accepted}
    for path in exported.glob("*.parquet"):
        shard = pq.ParquetFile(path)
        assert shard.schema_arrow == shard_schema()
        assert shard.schema_arrow.metadata[b"blendshape_names"].decode().split(",") == list(
            SHARD_BLENDSHAPE_NAMES
        )
        sizes = [shard.metadata.row_group(i).num_rows for i in range(shard.num_row_groups)]
        assert max(sizes) <= 2 and sum(sizes) == shard.metadata.num_rows
    assert not list(exported.parent.glob(".*.tmp")), "a temporary export folder was left behind"


def test_shards_carry_the_emotion_label_confidence_and_intensity(exported, accepted_run) -> None:
    rows = shard_rows(exported, ["clip_id", "emotion", "emotion_confidence", "emotion_intensity"])
    clips = {
        r["clip_id"]: r
        for r in accepted_run.sql(
            "select clip_id, emotion, emotion_confidence, emotion_intensity, emotion_source from clip_emotion"
        )
    }
    for row in rows:
        clip = clips[row["clip_id"]]
        # no reviewer named one here: the clip's own label, or its speaker-relative one where its
        # person (identity) has several clips (r3p_May_5s and its NeRF copy)
        assert clip["emotion_source"] in ("clip", "speaker")
        assert row["emotion"] == clip["emotion"]
        assert row["emotion_confidence"] == pytest.approx(clip["emotion_confidence"])
        assert row["emotion_intensity"] == pytest.approx(clip["emotion_intensity"])
        assert 0 <= row["emotion_intensity"] <= 1


def test_shards_written_on_ray_equal_those_written_in_one_process(exported, accepted_run) -> None:
    """The command line wrote ``exported`` with its default, the Ray executor (shard files by
    workers, manifest by the driver); the same export in this process gives the same rows."""
    options = ExportOptions(name=f"seq-{uuid.uuid4().hex[:8]}", clips_per_row_group=2)
    local = export(accepted_run.root, options, map_fn=map)
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["splits"] == json.loads((local.path / "manifest.json").read_text())["splits"]

    def by_clip(path: Path) -> dict[str, dict]:
        rows = shard_rows(path)
        return {r["clip_id"]: {k: v for k, v in r.items() if k != "clip_id"} for r in rows}

    assert by_clip(exported) == by_clip(local.path)


def test_frames_and_audio_line_up_with_the_tracks(exported, accepted_run) -> None:
    tracks = {
        r["clip_id"]: r
        for r in accepted_run.sql(
            "select t.clip_id, t.t_s, t.blendshapes, c.fps from tracks t join clips c using (clip_id)"
        )
    }
    neutral = BLENDSHAPE_NAMES.index("_neutral")
    for row in shard_rows(exported):
        track = tracks[row["clip_id"]]
        assert row["n_frames"] == len(track["t_s"]) == len(row["blendshapes"]) == len(row["face_present"])
        assert row["fps"] == track["fps"] == 30
        assert len(row["audio_pcm16"]) == round(row["n_frames"] / row["fps"] * SPEECH_SR_HZ)
        assert row["audio_offset_s"] == pytest.approx((row["sync_offset_frames"] or 0) / row["fps"])
        source = np.array([b for b in track["blendshapes"] if b is not None], np.float32)
        shard = np.array(row["blendshapes"], np.float32)[np.array(row["face_present"])]
        np.testing.assert_allclose(shard, np.delete(source, neutral, axis=1), atol=1e-6)
        assert np.abs(np.array(row["audio_pcm16"])).max() > 1000, "speech clips are not silent"


def test_manifest_records_what_produced_the_export(exported, accepted_run) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    current = accepted_run.sql(
        "select distinct decision_set, config_hash from current_decisions where verdict = 'accept'"
    )
    assert manifest["decision_sets"] == sorted({r["decision_set"] for r in current})
    assert manifest["config_hashes"] == sorted({r["config_hash"] for r in current})
    assert manifest["extractor_versions"] == {
        "face": "4", "speech": "1", "fingerprint": "1", "sync": "4", "emotion": "4", "quality": "2", "synthetic": "1",
        "identity": "2",
    }  # fmt: skip
    assert manifest["runs"] == [accepted_run.summary.run_id]
    assert manifest["fps"] == 30 and manifest["sample_rate_hz"] == SPEECH_SR_HZ
    assert sum(s["clips"] for s in manifest["splits"].values()) == 6
    assert manifest["splits"]["train"]["clips"] >= 1
    listed = {f["file"] for s in manifest["splits"].values() for f in s["files"]}
    assert listed == {p.name for p in exported.glob("*.parquet")}


def test_no_group_is_in_two_splits(exported) -> None:
    split_of: dict[str, set[str]] = {}
    for row in shard_rows(exported, ["group_id", "split", "video_id"]):
        split_of.setdefault(row["group_id"], set()).add(row["split"])
        assert row["group_id"] == row["video_id"], "without twins each video is its own group"
    assert all(len(splits) == 1 for splits in split_of.values())


def test_where_and_group_options(root_copy, accepted_run) -> None:
    short = accepted_run.sql(
        "select count(*) n from current_decisions d join clips c using (clip_id) "
        "where d.verdict = 'accept' and c.duration_s < 6"
    )[0]["n"]
    assert 0 < short < 6
    summary = export(root_copy, ExportOptions(name="short", where="c.duration_s < 6", group="'everyone'"))
    assert summary.splits["train"]["clips"] == short and summary.splits["train"]["groups"] == ["everyone"]
    assert {r["group_id"] for r in shard_rows(summary.path, ["group_id"])} == {"everyone"}
    with pytest.raises(ExportError, match="exists"):
        export(root_copy, ExportOptions(name="short"))
    with pytest.raises(ExportError, match="--where"):
        export(root_copy, ExportOptions(name="bad", where="no_such_column > 1"))
    with pytest.raises(ExportError, match="no clip"):
        export(root_copy, ExportOptions(name="none", where="c.duration_s > 1000"))
    assert not (root_copy / "exports" / "bad").exists()


def test_chosen_groups_form_the_test_split(root_copy) -> None:
    """Held-out speakers chosen by a predicate, not by the hash: exactly their groups are test."""
    options = ExportOptions(
        name="held-out",
        group="regexp_extract(v.uri, '[^/]+$')",
        test="v.uri like '%/vr_face_3.mp4' or v.uri like '%/r3p_May_5s.mp4'",
        val_fraction=0.0,
    )
    summary = export(root_copy, options)
    assert summary.splits["test"]["groups"] == ["r3p_May_5s.mp4", "vr_face_3.mp4"]
    assert summary.splits["train"]["clips"] == 4 and summary.splits["val"]["clips"] == 0
    rows = shard_rows(summary.path, ["group_id", "split"])
    assert {r["group_id"] for r in rows if r["split"] == "test"} == {"r3p_May_5s.mp4", "vr_face_3.mp4"}
    manifest = json.loads((summary.path / "manifest.json").read_text())
    assert manifest["options"]["test"] == options.test


def test_chosen_test_groups_leave_train_non_empty() -> None:
    assert assign_splits(["a", "b"], 0.0, 0.1, {"a"}) == {"a": "test", "b": "train"}
    hashed = assign_splits([f"g{i}" for i in range(200)], 0.1, 0.5, {"g1", "g2"})
    assert {g for g, s in hashed.items() if s == "test"} == {"g1", "g2"}  # test_fraction unused


def set_value(root: DatasetRoot, table_name: str, row_id: str, column: str, value: object) -> None:
    """Rewrite, in place, the committed part of ``table_name`` that holds the row ``row_id`` (a
    clip id, or a video id for videos) with one value changed."""
    id_column = "video_id" if table_name == "videos" else "clip_id"
    for part in root.parts(table_name):
        table = pq.read_table(part)
        ids = table[id_column].to_pylist()
        if row_id in ids:
            values = table[column].to_pylist()
            values[ids.index(row_id)] = value
            index = table.schema.get_field_index(column)
            write_parquet_atomic(
                table.set_column(index, column, pa.array(values, table.schema.field(index).type)), part
            )


def test_sync_offset_moves_the_audio_by_whole_frames(root_copy) -> None:
    """Mark a clip +3 frames (audio lags): its audio is read 3 frames (1600 samples) later."""
    root = DatasetRoot(root_copy)
    clip = query(root_copy, "select * from clips where video_id like '707d58aa%'").to_pylist()[0]  # vr_face_3
    only = f"c.clip_id = '{clip['clip_id']}'"
    before = export(root_copy, ExportOptions(name="as-measured", where=only))
    set_value(root, "clips", clip["clip_id"], "sync_offset_frames", 3)
    after = export(root_copy, ExportOptions(name="lag-3", where=only))
    set_value(root, "clips", clip["clip_id"], "sync_offset_frames", clip["sync_offset_frames"])
    a = np.array(shard_rows(before.path, ["audio_pcm16"])[0]["audio_pcm16"], np.float64)
    b = np.array(shard_rows(after.path, ["audio_pcm16"])[0]["audio_pcm16"], np.float64)
    # sample of the first audio (offset as measured) that the second audio starts at
    start = 3 * SPEECH_SR_HZ // 30 - round((clip["sync_offset_frames"] or 0) * SPEECH_SR_HZ / 30)
    overlap = len(a) - start - 2000
    assert np.corrcoef(a[start : start + overlap], b[:overlap])[0, 1] > 0.99
    assert shard_rows(after.path, ["audio_offset_s"])[0]["audio_offset_s"] == pytest.approx(0.1)


def test_a_twin_accepted_in_review_joins_its_kept_clip_s_group(root_copy) -> None:
    """A reviewer accepts the rejected twin sadtalker_WDA_AOC_000: it shares vr_face_3's group."""
    root = DatasetRoot(root_copy)
    twin = query(root_copy, "select * from current_decisions where duplicate_of is not null").to_pylist()[0]
    review = {"verdict": "accept", "source": "review", "who": "tester", "decision_set": "zz-review"}
    now = dt.datetime.now(dt.UTC)
    root.write_part(
        "decisions", "zz-review", [{**twin, **review, "decided_at": now}], dataset_schemas()["decisions"]
    )
    summary = export(root_copy, ExportOptions(name="with-twin"))
    rows = {r["clip_id"]: r for r in shard_rows(summary.path, ["clip_id", "group_id", "split"])}
    assert rows[twin["clip_id"]]["group_id"] == rows[twin["duplicate_of"]]["group_id"]
    assert rows[twin["clip_id"]]["split"] == rows[twin["duplicate_of"]]["split"]
    root.table_dir("decisions").joinpath("part-zz-review.parquet").unlink()


def test_splits_depend_on_the_group_alone() -> None:
    groups = [f"speaker-{i}" for i in range(2000)]
    splits = assign_splits(groups, 0.1, 0.1)
    assert assign_splits(reversed(groups), 0.1, 0.1) == splits
    assert assign_splits(groups[:50], 0.1, 0.1) == {g: splits[g] for g in groups[:50]}
    shares = {s: list(splits.values()).count(s) / len(groups) for s in ("train", "val", "test")}
    assert shares["train"] == pytest.approx(0.8, abs=0.03)
    assert shares["val"] == pytest.approx(0.1, abs=0.02)
    # one group whose hash falls in test still trains
    lonely = next(g for g in groups if splits[g] == "test")
    assert assign_splits([lonely], 0.1, 0.1) == {lonely: "train"}


def test_twins_merge_transitively() -> None:
    groups = merge_duplicates(["c", "b", "a", "d"], [("c", "b"), ("b", "a")])
    assert groups == {"a": "a", "b": "a", "c": "a", "d": "d"}


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="share for train"):
        ExportOptions(name="x", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="export name"):
        ExportOptions(name="../escape")


def test_a_clip_whose_media_is_gone_is_left_out_and_listed(root_copy) -> None:
    root = DatasetRoot(root_copy)
    video = query(root_copy, "select video_id, uri from videos where video_id like 'f664ca85%'").to_pylist()[
        0
    ]  # vr_face_5
    set_value(root, "videos", video["video_id"], "uri", str(root_copy / "moved.mp4"))
    try:
        summary = export(root_copy, ExportOptions(name="media-gone", where="c.duration_s < 5.5"))
        with pytest.raises(ExportError, match="no selected clip could be exported"):
            export(root_copy, ExportOptions(name="all-gone", where=f"c.video_id = '{video['video_id']}'"))
    finally:
        set_value(root, "videos", video["video_id"], "uri", video["uri"])
    (reason,) = summary.skipped.values()
    assert reason.startswith("unreadable_audio:") and "moved.mp4" in reason
    assert sum(split["clips"] for split in summary.splits.values()) == 2  # vr_face_3 and r3p_May_5s
    manifest = json.loads((summary.path / "manifest.json").read_text())
    assert manifest["skipped"] == summary.skipped
    assert not (root_copy / "exports" / "all-gone").exists()
