"""A root with damaged parts (truncated copies): readers leave them out with a one-line warning,
`curate check` finds them and `--repair` moves them aside, and a rerun redoes exactly their clips."""

from __future__ import annotations

import shutil

import pytest

from curate.query import query
from curate.run import run
from manifests.store import DatasetRoot, is_complete_parquet


def truncate(path) -> None:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def damaged_root(fixture_run, tmp_path):  # type: ignore[no-untyped-def]
    """A copy of the fixture run with the clips part of vr_face_5's clip, the tracks part of
    r3p_May_5s's clip and one decision set cut in half."""
    root = tmp_path / "root"
    shutil.copytree(fixture_run.root, root, ignore=shutil.ignore_patterns(".lock", "_staging", "exports"))
    clip_of = {
        r["name"]: r["clip_id"]
        for r in fixture_run.sql(
            "select regexp_extract(v.uri, '[^/]+$') name, c.clip_id from clips c join videos v using (video_id)"
        )
    }
    dataset = DatasetRoot(root)
    cut = [
        dataset.part_path("clips", clip_of["vr_face_5.mp4"]),
        dataset.part_path("tracks", clip_of["r3p_May_5s.mp4"]),
        dataset.parts("decisions")[0],
    ]
    for part in cut:
        truncate(part)
    return root, cut, fixture_run


def test_readers_leave_damaged_parts_out_with_a_warning(damaged_root, curate) -> None:
    root, cut, _ = damaged_root
    done = curate("query", str(root), "select count(*) n from clips", "-f", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "12"  # 13 clips, one part damaged
    warnings = [
        line for line in done.stderr.splitlines() if line.startswith("warning: left out the damaged part")
    ]
    assert len(warnings) == 3 and all(any(str(p) in w for w in warnings) for p in cut)
    assert "Traceback" not in done.stderr
    assert curate("filter", str(root)).returncode == 0
    assert curate("report", str(root)).returncode == 0


def test_check_finds_and_repair_moves_aside(damaged_root, curate) -> None:
    root, cut, _ = damaged_root
    found = curate("check", str(root))
    assert found.returncode == 1 and found.stdout.count("damaged: ") == 3, found.stdout
    fixed = curate("check", str(root), "--repair")
    assert fixed.returncode == 0, fixed.stderr
    # The damaged parts, the clips part marking the damaged tracks done, and both videos' parts.
    assert "moved aside: 6 files" in fixed.stdout, fixed.stdout
    assert not any(p.exists() for p in cut)
    assert len(list((root / "_quarantine").rglob("*.parquet.*"))) == 6
    again = curate("check", str(root))
    assert again.returncode == 0 and "damaged: " not in again.stdout


def test_a_rerun_redoes_exactly_the_damaged_clips(damaged_root) -> None:
    root, cut, fixture_run = damaged_root
    with pytest.warns(UserWarning, match="missing.mp4: no such file"):
        summary = run(fixture_run.sources, root, fixture_run.config, progress=False)
    assert summary.videos_processed == 2  # vr_face_5 and r3p_May_5s; the others are done
    assert all(is_complete_parquet(p) for p in cut[:2])
    counts = query(root, "select count(*) n, count(distinct clip_id) d from clips").to_pylist()
    assert counts == [{"n": 13, "d": 13}]
    assert query(root, "select count(*) n from tracks").to_pylist() == [{"n": 13}]
