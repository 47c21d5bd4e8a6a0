"""A damaged commit log loses no row: every commit record and checkpoint has a second copy in
``_log/_copy`` that readers use when the first is truncated, ``curate check --repair`` rewrites
the first from it, and where both copies of a checkpoint are gone no compaction, run or repair
deletes a single part (real Parquet and DuckDB, real files truncated)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from batch_rows import SCHEMAS, clip_rows, counts, fill

from manifests.batch import BatchWriter
from manifests.check import check_root
from manifests.compact import compact
from manifests.store import RECORD_MAX_BYTES, DatasetRoot


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def compacted_then_written(folder: Path) -> tuple[DatasetRoot, tuple[int, ...]]:
    """30 clips compacted into a checkpoint, then 5 more committed by a record after it."""
    root = DatasetRoot(folder)
    fill(root, videos=6, clips_per_video=5, batch=5)
    compact(folder, target_clips=10, grace_s=0)
    writer = BatchWriter(root, SCHEMAS, max_clips=5, max_wait_s=3600)
    for clip, track in clip_rows(100, 5):
        writer.add_clip(clip, track)
    writer.add_video({"video_id": "v00100", "uri": "100.mp4", "n_clips": 5})
    writer.flush()
    return root, (35, 35, 35, 7)


def log_file(folder: Path, kind: str) -> Path:
    """The checkpoint or the latest commit record, or (``... copy``) its second copy."""
    where = folder / "_log" / "_copy" if kind.endswith("copy") else folder / "_log"
    files = sorted(where.glob("_checkpoint-*.json" if kind.startswith("checkpoint") else "[0-9]*.json"))
    assert files, kind
    return files[-1]


def parts_on_disk(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.glob("*/part-*.parquet")
        if not p.parent.name.startswith("_")
    }


@pytest.mark.parametrize("kind", ["checkpoint", "checkpoint copy", "record", "record copy"])
def test_a_truncated_log_file_loses_no_row(tmp_path: Path, kind: str) -> None:
    root, expected = compacted_then_written(tmp_path)
    truncate(log_file(tmp_path, kind))
    assert counts(root) == expected  # read from the other copy
    found = check_root(tmp_path)
    assert not found.clean and not found.damaged_records and len(found.recovered_records) == 1
    assert "its other copy is whole, nothing lost" in found.to_text()
    compact(tmp_path, target_clips=10, grace_s=0)  # folds, merges and sweeps over the damage
    assert counts(root) == expected
    repaired = check_root(tmp_path, repair=True)
    assert counts(root) == expected and check_root(tmp_path).clean, repaired.to_text()
    compact(tmp_path, target_clips=100, grace_s=0)
    assert counts(root) == expected and check_root(tmp_path).clean


def test_with_both_copies_of_a_checkpoint_gone_no_part_is_deleted(tmp_path: Path) -> None:
    root, _ = compacted_then_written(tmp_path)
    truncate(log_file(tmp_path, "checkpoint"))
    truncate(log_file(tmp_path, "checkpoint copy"))
    before = parts_on_disk(tmp_path)
    assert counts(root) == (5, 5, 5, 1)  # only the record after it: the rest is out of view
    assert root.sweep() == 0
    compact(tmp_path, target_clips=10, grace_s=0)
    fixed = check_root(tmp_path, repair=True)
    assert any("_checkpoint-" in a for a, _ in fixed.moved), fixed.to_text()
    after = check_root(tmp_path)
    assert after.sweep_refused and "no part is deleted until it is restored" in after.to_text()
    compact(tmp_path, target_clips=100, grace_s=0)
    assert root.sweep() == 0
    kept = parts_on_disk(tmp_path)
    assert all(kept.get(name) == data for name, data in before.items()), "every part byte for byte"
    assert counts(root) == (5, 5, 5, 1)


def test_an_oversized_record_is_damaged_and_never_read(tmp_path: Path) -> None:
    root, expected = compacted_then_written(tmp_path)
    record = log_file(tmp_path, "record")
    os.truncate(record, RECORD_MAX_BYTES + 1)  # sparse: nothing is written to disk
    assert counts(root) == expected  # read from its copy
    found = check_root(tmp_path)
    assert f"holds {RECORD_MAX_BYTES + 1} bytes" in found.recovered_records[f"_log/{record.name}"]
    check_root(tmp_path, repair=True)
    assert record.stat().st_size < 10_000 and check_root(tmp_path).clean
