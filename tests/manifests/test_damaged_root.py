"""A root with damaged parts (truncated copies): readers leave them out with a one-line warning,
`curate check` finds them and `--repair` moves them aside with the rest of their batch, and a
rerun redoes exactly the clips of the damaged batches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.query import query
from curate.run import run
from manifests.store import DatasetRoot


def truncate(path) -> None:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def clip_ids(part: Path) -> set[str]:
    return set(pq.read_table(part, columns=["clip_id"])["clip_id"].to_pylist())


@pytest.fixture
def damaged_root(fixture_run, tmp_path):  # type: ignore[no-untyped-def]
    """A copy of the fixture run with the clips part holding vr_face_5's clip, the tracks part
    holding r3p_May_5s's clip and one decision set cut in half; with what the damaged parts and
    their batches (the clips, tracks and videos parts of their keys) held before."""
    root = tmp_path / "root"
    shutil.copytree(fixture_run.root, root, ignore=shutil.ignore_patterns(".lock", "_staging", "exports"))
    clip_of = {
        r["name"]: r["clip_id"]
        for r in fixture_run.sql(
            "select regexp_extract(v.uri, '[^/]+$') name, c.clip_id from clips c join videos v using (video_id)"
        )
    }
    dataset = DatasetRoot(root)
    clips_part = next(p for p in dataset.parts("clips") if clip_of["vr_face_5.mp4"] in clip_ids(p))
    tracks_part = next(p for p in dataset.parts("tracks") if clip_of["r3p_May_5s.mp4"] in clip_ids(p))
    cut = [clips_part, tracks_part, dataset.parts("decisions")[0]]
    batch = [
        p
        for t in ("clips", "tracks", "videos")
        for p in dataset.parts(t)
        if p.name in {clips_part.name, tracks_part.name}
    ]
    held = {
        "clips_part": clip_ids(clips_part),
        "batch": batch,
        "clips": set().union(*(clip_ids(p) for p in batch if p.parent.name == "clips")),
        "videos": {
            v for p in batch if p.parent.name != "tracks" for v in pq.read_table(p)["video_id"].to_pylist()
        },
    }
    for part in cut:
        truncate(part)
    return root, cut, fixture_run, held


def test_readers_leave_damaged_parts_out_with_a_warning(damaged_root, curate) -> None:
    root, cut, _, held = damaged_root
    done = curate("query", str(root), "select count(*) n from clips", "-f", "csv")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.splitlines()[1]) == 13 - len(held["clips_part"])  # the damaged part's clips
    warnings = [
        line for line in done.stderr.splitlines() if line.startswith("warning: left out the damaged part")
    ]
    assert len(warnings) == 3 and all(any(str(p) in w for w in warnings) for p in cut)
    assert "Traceback" not in done.stderr
    assert curate("filter", str(root)).returncode == 0
    assert curate("report", str(root)).returncode == 0


def test_check_finds_and_repair_moves_aside(damaged_root, curate) -> None:
    root, cut, _, held = damaged_root
    found = curate("check", str(root))
    assert found.returncode == 1 and found.stdout.count("damaged: ") == 3, found.stdout
    fixed = curate("check", str(root), "--repair")
    assert fixed.returncode == 0, fixed.stderr
    # The damaged parts with the rest of their batches, and the decision set.
    moved = len(held["batch"]) + 1
    assert f"moved aside: {moved} files" in fixed.stdout, fixed.stdout
    assert not any(p.exists() for p in cut)
    assert len(list((root / "_quarantine").rglob("*.parquet.*"))) == moved
    again = curate("check", str(root))
    assert again.returncode == 0 and "damaged: " not in again.stdout


def test_a_rerun_redoes_exactly_the_damaged_batches(damaged_root) -> None:
    root, cut, fixture_run, held = damaged_root
    with pytest.warns(UserWarning, match="missing.mp4: no such file"):
        summary = run(fixture_run.sources, root, fixture_run.config, progress=False)
    # The videos of the damaged batches are done again (the missing file's row among them or not).
    assert summary.videos_processed + summary.videos_failed == len(held["videos"])
    assert summary.clips == len(held["clips"])
    counts = query(root, "select count(*) n, count(distinct clip_id) d from clips").to_pylist()
    assert counts == [{"n": 13, "d": 13}]
    assert query(root, "select count(*) n from tracks").to_pylist() == [{"n": 13}]
    assert not any(p.exists() for p in cut[:2]) and DatasetRoot(root).damaged_rels("clips") == []
