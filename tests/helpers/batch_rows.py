"""Synthetic rows for storage tests: clips with their tracks, committed through a batch writer,
the counts a reader sees (every table through the DuckDB views), and a compaction killed with
SIGKILL at one step of its commit, and a part whose pages are zeroed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from extractors.registry import dataset_schemas
from manifests.batch import BatchWriter
from manifests.store import DatasetRoot
from manifests.views import connect

SCHEMAS = dataset_schemas()


def clip_rows(video: int, clips: int) -> list[tuple[dict, dict]]:
    vid = f"v{video:05d}"
    return [
        ({"clip_id": f"{vid}_{i:03d}", "video_id": vid, "duration_s": 2.0, "errors": {}},
         {"clip_id": f"{vid}_{i:03d}", "video_id": vid, "t_s": [0.0, 0.04]})
        for i in range(clips)
    ]  # fmt: skip


def fill(root: DatasetRoot, videos: int, clips_per_video: int, batch: int) -> None:
    """``videos`` videos of ``clips_per_video`` clips committed through a batch writer."""
    writer = BatchWriter(root, SCHEMAS, max_clips=batch, max_wait_s=3600)
    for v in range(videos):
        for clip, track in clip_rows(v, clips_per_video):
            writer.add_clip(clip, track)
        writer.add_video({"video_id": f"v{v:05d}", "uri": f"{v}.mp4", "n_clips": clips_per_video})
    writer.flush()


def counts(root: DatasetRoot) -> tuple[int, ...]:
    con = connect(root, SCHEMAS)
    try:
        row = con.execute(
            "select (select count(*) from clips), (select count(distinct clip_id) from clips),"
            " (select count(*) from tracks), (select count(*) from videos)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return tuple(row)


#: Where a compaction is killed: the method that begins the step.
KILL_AT = {
    # before the commit record: the merged parts are written, nothing names them
    "record": "manifests.store.DatasetRoot.record",
    # after the record, before the checkpoint folds the records in
    "checkpoint": "manifests.store.DatasetRoot.checkpoint",
    # after the checkpoint, before the records it folded are deleted
    "sweep": "manifests.store.DatasetRoot.sweep",
}


def compact_killed_at(root: str, step: str, target_clips: int) -> None:
    """Run ``curate compact``'s work on ``root`` in a child process that dies by SIGKILL the
    moment ``step`` (a key of :data:`KILL_AT`) begins; the fault is injected there, in the child."""
    module, cls, method = KILL_AT[step].rsplit(".", 2)
    code = (
        f"import os, signal, {module} as m\n"
        f"setattr(m.{cls}, {method!r}, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))\n"
        f"from manifests.compact import compact\ncompact({root!r}, target_clips={target_clips}, grace_s=0)\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert child.returncode == -9, child.stderr


def zero_pages(part: Path) -> None:
    """The middle half of the part's pages zeroed; its magic bytes and footer stay."""
    data = bytearray(part.read_bytes())
    pages_end = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    start, end = 4 + (pages_end - 4) // 4, pages_end - (pages_end - 4) // 4
    data[start:end] = bytes(end - start)
    part.write_bytes(bytes(data))
