"""Parts checked for content, not only for Parquet's magic bytes: a whole Parquet file of
another schema (a column of another kind, a required column missing) is left out by readers
with a warning naming why, and `check` names it; a part zeroed in its middle, magic intact, is
found by `check` reading every page (checksums written at commit); `--repair` moves each aside
with its batch. Real Parquet, DuckDB and files overwritten in place."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_rows import SCHEMAS, counts, fill, zero_pages

from manifests.check import check_root
from manifests.compact import compact
from manifests.store import DatasetRoot
from manifests.views import DamagedPart


def retyped(part: Path) -> str:
    table = pq.read_table(part)
    at = table.schema.get_field_index("duration_s")
    pq.write_table(table.set_column(at, "duration_s", pa.array(["long"] * len(table))), part)
    return "its column 'duration_s' is string, not double"


def headless(part: Path) -> str:
    pq.write_table(pq.read_table(part).drop_columns(["clip_id"]), part)
    return "it has no 'clip_id' column"


def zeroed(part: Path) -> str:
    zero_pages(part)
    return "its pages do not read"


@pytest.mark.parametrize("damage", [retyped, headless, zeroed])
def test_a_part_of_bad_content_is_found_left_out_and_set_aside(
    tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    root = DatasetRoot(tmp_path)
    fill(root, videos=4, clips_per_video=50, batch=50)  # 4 batches of 50 clips
    victim = root.parts("clips")[1]
    why = damage(victim)
    assert pq.ParquetFile(victim).metadata is not None  # still a Parquet file by its footer
    found = check_root(tmp_path, schemas=SCHEMAS)
    assert list(found.unreadable) == [f"clips/{victim.name}"], found.to_text()
    assert why in found.unreadable[f"clips/{victim.name}"] and not found.clean, found.to_text()
    assert f"damaged part clips/{victim.name}: {why}" in found.to_text()
    if damage is not zeroed:  # a footer readers check; pages only `check` reads through
        with pytest.warns(DamagedPart, match=why):
            assert counts(root)[:2] == (150, 150)
    batch = {
        f"{t}/{victim.name}" for t in ("clips", "tracks", "videos") if (tmp_path / t / victim.name).exists()
    }
    fixed = check_root(tmp_path, repair=True, schemas=SCHEMAS)
    assert {a for a, _ in fixed.moved} >= batch
    assert check_root(tmp_path, schemas=SCHEMAS).clean
    # The batch is gone whole (its video row only when the batch held it): a run redoes its clips.
    assert counts(root) == (150, 150, 150, 4 - (f"videos/{victim.name}" in batch))


def test_quick_reads_footers_only(tmp_path: Path) -> None:
    root = DatasetRoot(tmp_path)
    fill(root, videos=2, clips_per_video=50, batch=50)
    zeroed(root.parts("clips")[0])
    assert check_root(tmp_path, schemas=SCHEMAS, pages=False).clean
    assert not check_root(tmp_path, schemas=SCHEMAS).clean


def test_links_fifos_and_devices_anywhere_are_named_and_set_aside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "part-x.parquet").write_bytes(b"not the root's")
    folder = tmp_path / "root"
    root = DatasetRoot(folder)
    fill(root, videos=2, clips_per_video=5, batch=5)
    (folder / "tracks" / "extra").symlink_to(outside)
    os.mkfifo(folder / "_log" / "pipe")
    (folder / "runs").mkdir()
    (folder / "runs" / "x.json").symlink_to(outside / "part-x.parquet")
    found = check_root(folder, schemas=SCHEMAS)
    assert found.strange == {
        "_log/pipe": "FIFO",
        "runs/x.json": "symbolic link",
        "tracks/extra": "symbolic link",
    }
    assert "FIFO _log/pipe: nothing is written" in found.to_text() and not found.clean
    fixed = check_root(folder, repair=True, schemas=SCHEMAS)
    assert len(fixed.moved) == 3 and check_root(folder, schemas=SCHEMAS).clean, fixed.to_text()
    assert (outside / "part-x.parquet").read_bytes() == b"not the root's"  # the link moved, not its target
    assert counts(root) == (10, 10, 10, 2)


def test_compaction_leaves_a_part_of_another_schema_where_it_is(tmp_path: Path) -> None:
    root = DatasetRoot(tmp_path)
    fill(root, videos=6, clips_per_video=5, batch=5)
    victim = root.parts("clips")[2]
    retyped(victim)
    # A batch's parts share a name; the first batch holds no video and the last only one, so
    # which tables hold the victim's batch depends on how the names sort.
    tables = ("clips", "tracks", "videos")
    parts = [p for t in tables for p in root.parts(t)]
    batch = [p for p in parts if p.name == victim.name]
    report = compact(tmp_path, target_clips=100, grace_s=0, schemas=SCHEMAS)
    assert report.merged == len(parts) - len(batch) and victim.exists()  # every other part merged
    with pytest.warns(DamagedPart, match="its column 'duration_s' is string"):
        assert counts(root)[:2] == (25, 25)
