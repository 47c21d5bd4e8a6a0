"""Batched parts and compaction on real Parquet and DuckDB: a batch is visible whole or not at
all, files no commit record names are invisible and swept, compaction leaves every reader seeing
each row exactly once (also while it runs, and when it is killed with SIGKILL at each step of its
commit), and a root in the old one-part-per-clip layout is read and adopted."""

from __future__ import annotations

import threading

import pytest
from batch_rows import KILL_AT, SCHEMAS, clip_rows, compact_killed_at, counts, fill

from manifests.batch import BatchWriter
from manifests.compact import compact, plan_groups
from manifests.store import DatasetRoot, records_to_table, write_parquet_atomic


def test_a_batch_is_committed_whole_when_full_and_at_flush(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    writer = BatchWriter(root, SCHEMAS, max_clips=3, max_wait_s=3600)
    rows = clip_rows(0, 5)
    for clip, track in rows[:2]:
        writer.add_clip(clip, track)
    assert counts(root) == (0, 0, 0, 0) and not root.committed().clips  # held, not committed
    writer.add_clip(*rows[2])  # the third clip fills the batch
    assert counts(root) == (3, 3, 3, 0)
    for clip, track in rows[3:]:
        writer.add_clip(clip, track)
    writer.add_video({"video_id": "v00000", "uri": "0.mp4", "n_clips": 5})
    assert writer.flush() is not None and writer.flush() is None
    assert counts(root) == (5, 5, 5, 1)
    assert [len(root.parts(t)) for t in ("clips", "tracks", "videos")] == [2, 2, 1]
    done = root.committed()
    assert len(done.clips) == 5 and done.done_videos == {"v00000"}


def test_a_video_is_done_only_when_all_its_clips_are_committed(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    writer = BatchWriter(root, SCHEMAS, max_clips=100, max_wait_s=3600)
    clip, track = clip_rows(0, 2)[0]
    writer.add_clip(clip, track)  # one of its two clips: the other was held by a worker that died
    writer.add_video({"video_id": "v00000", "uri": "0.mp4", "n_clips": 2})
    writer.flush()
    done = root.committed()
    assert done.videos == {"v00000"} and not done.done_videos


def test_files_without_a_commit_record_are_invisible_and_swept(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    fill(root, 2, 2, batch=2)
    clip, _ = clip_rows(9, 1)[0]
    orphan = write_parquet_atomic(
        records_to_table([clip], SCHEMAS["clips"]), root.part_path("clips", "killed")
    )
    assert counts(root) == (4, 4, 4, 2)  # a writer killed before its record: nothing seen
    assert root.sweep() == 1 and not orphan.exists()


def test_plan_groups_merges_small_parts_only() -> None:
    sizes = [("a", 3), ("b", 3), ("c", 10), ("d", 2), ("e", 5), ("f", 1)]
    assert plan_groups(sizes, 5) == [["a", "b"], ["d", "f"]]  # c and e are big enough already


def test_a_last_small_part_after_exactly_full_groups_is_merged_too() -> None:
    # a batch writer's last flush (one videos row) sorted after batches that fill groups exactly:
    # left alone it stayed a part of its own, depending on how the keys' times fell
    sizes = [(f"k{i:02d}", 5) for i in range(40)] + [("last", 1)]
    groups = plan_groups(sizes, 100)
    assert [len(g) for g in groups] == [20, 21] and groups[-1][-1] == "last"
    assert plan_groups([("a", 1)], 100) == []  # one small part alone: nothing to merge with


def test_compaction_merges_parts_while_readers_see_every_row_once(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    fill(root, videos=60, clips_per_video=5, batch=5)  # 60 batches of 5 clips
    expected = (300, 300, 300, 60)
    assert counts(root) == expected and len(root.parts("clips")) == 60
    records = len(list((tmp_path / "_log").glob("*.json")))
    seen: list[tuple[int, ...]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(counts(root))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        report = compact(tmp_path, target_clips=100)
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {expected}, set(seen)
    assert counts(root) == expected
    assert report.files_after["clips"] == report.files_after["tracks"] == 3
    assert report.merged == 60 * 3 and report.folded == records + 1  # the batches' and its own
    assert len(list((tmp_path / "_log").glob("*.json"))) == 1  # the checkpoint alone
    assert [p.name for p in (tmp_path / "_log" / "_copy").iterdir()] == [  # and its copy
        p.name for p in (tmp_path / "_log").glob("*.json")
    ]
    # Merged-away parts wait out the grace period for readers that started before.
    assert len(list((tmp_path / "clips").glob("part-*"))) == 63
    compact(tmp_path, target_clips=100, grace_s=0)
    assert len(list((tmp_path / "clips").glob("part-*"))) == 3
    assert counts(root) == expected and len(root.committed().done_videos) == 60


@pytest.mark.parametrize("step", list(KILL_AT))
def test_kill_9_during_compaction_loses_and_duplicates_nothing(tmp_path, step) -> None:
    root = DatasetRoot(tmp_path)
    fill(root, videos=20, clips_per_video=3, batch=3)
    expected = counts(root)
    compact_killed_at(str(tmp_path), step, target_clips=30)
    assert counts(root) == expected  # readers: every row once, whatever the step
    report = compact(tmp_path, target_clips=30, grace_s=0)  # the next compaction finishes the job
    assert counts(root) == expected
    assert report.files_after["clips"] == 2 and len(list((tmp_path / "clips").glob("part-*"))) == 2
    assert len(root.committed().clips) == 60


def test_a_root_of_the_per_clip_layout_is_read_then_adopted(tmp_path) -> None:
    root = DatasetRoot(tmp_path)
    for clip, track in clip_rows(0, 4):  # as runs wrote it before batches: a part per clip, no log
        write_parquet_atomic(
            records_to_table([clip], SCHEMAS["clips"]), root.part_path("clips", clip["clip_id"])
        )
        write_parquet_atomic(
            records_to_table([track], SCHEMAS["tracks"]), root.part_path("tracks", clip["clip_id"])
        )
    video = {"video_id": "v00000", "uri": "0.mp4", "n_clips": 4}
    write_parquet_atomic(records_to_table([video], SCHEMAS["videos"]), root.part_path("videos", "v00000"))
    assert counts(root) == (4, 4, 4, 1) and root.committed().done_videos == {"v00000"}
    fill(root, 1, 0, batch=1)  # a first commit adopts the old parts...
    assert (tmp_path / "_log").is_dir() and counts(root) == (4, 4, 4, 2)
    compact(tmp_path, target_clips=100, grace_s=0)  # ... and compaction merges them
    assert counts(root) == (4, 4, 4, 2) and len(list((tmp_path / "clips").glob("part-*"))) == 1
    assert [len(root.parts(t)) for t in ("clips", "tracks", "videos")] == [1, 1, 1]
