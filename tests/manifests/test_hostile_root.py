"""A root damaged by hand, each probe its own case on a copy of the fixture run: garbage, empty
and foreign commit records, a FIFO in place of a part, a root in a folder whose name holds glob
characters, a limit that is not a number, clips committed before their video's row. Every
command ends with its documented exit status and a one-line message naming the file, and reads
nothing outside the root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from manifests.store import DatasetRoot

pytestmark = pytest.mark.slow  # a copy of the fixture run


@pytest.fixture
def root(fixture_run, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(fixture_run.root, copy, ignore=shutil.ignore_patterns(".lock", "_staging", "exports"))
    return copy


def count(curate, root: Path, table: str = "clips") -> int:  # type: ignore[no-untyped-def]
    done = curate("query", str(root), f"select count(*) n from {table}", "-f", "csv")
    assert done.returncode == 0, done.stderr
    return int(done.stdout.splitlines()[1])


OUTSIDE = {"at": 1.0, "add": {"clips": ["../../../etc/part-x.parquet"]}, "remove": {}}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not json at all {", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "holds list, not a record"),
        (str(OUTSIDE).replace("'", '"').encode(), "not a part of 'clips'"),
    ],
    ids=["garbage", "empty", "not-a-record", "names-a-file-outside"],
)
def test_a_damaged_commit_record_is_named_left_out_and_set_aside(root, curate, content, why) -> None:  # type: ignore[no-untyped-def]
    clips = count(curate, root)
    record = root / "_log" / f"{'9' * 20}-damaged.json"
    record.write_bytes(content)
    done = curate("query", str(root), "select count(*) n from clips", "-f", "csv")
    assert done.returncode == 0 and int(done.stdout.splitlines()[1]) == clips, done.stderr
    warned = [
        line for line in done.stderr.splitlines() if line.startswith("warning: left out the damaged commit")
    ]
    assert len(warned) == 1 and f"record {record}: " in warned[0] and why in warned[0], done.stderr
    for command in (("filter", str(root)), ("report", str(root)), ("compact", str(root))):
        ran = curate(*command)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, (command, ran.stderr)
    assert count(curate, root) == clips, "no committed row lost or duplicated"
    found = curate("check", str(root))
    assert found.returncode == 1 and f"damaged commit record _log/{record.name}: " in found.stdout
    assert why in found.stdout
    fixed = curate("check", str(root), "--repair")
    assert fixed.returncode == 0 and not record.exists(), fixed.stdout
    assert list((root / "_quarantine" / "_log").glob(f"{record.name}.*"))
    assert curate("check", str(root)).returncode == 0 and count(curate, root) == clips


def test_a_fifo_in_place_of_a_part_is_damaged_never_opened(root, curate) -> None:  # type: ignore[no-untyped-def]
    part = DatasetRoot(root).parts("decisions")[0]
    part.unlink()
    os.mkfifo(part)
    done = curate("query", str(root), "select count(*) from decisions", "-f", "csv")  # would hang on open
    assert done.returncode == 0 and f"left out the damaged part {part}" in done.stderr
    found = curate("check", str(root))
    assert found.returncode == 1 and f"damaged: decisions/{part.name}" in found.stdout


def test_a_root_path_is_taken_literally(fixture_run, tmp_path: Path, curate) -> None:  # type: ignore[no-untyped-def]
    """DuckDB reads "g[1]/..." as the glob "g1/..." and "st*r/..." as every "st...r": next to each
    root lies a folder such a glob would match, one without clip files, one with the same root."""
    for folder in ("g[1]", "g1", "st*r", "star"):
        shutil.copytree(fixture_run.root, tmp_path / folder / "root", ignore=shutil.ignore_patterns(".lock"))
    shutil.rmtree(tmp_path / "g1" / "root" / "clips")
    clips = count(curate, fixture_run.root)
    for folder in ("g[1]", "st*r"):
        assert count(curate, tmp_path / folder / "root") == clips, folder
        judged = curate("filter", str(tmp_path / folder / "root"))
        assert judged.returncode == 0 and "Traceback" not in judged.stderr
        verdicts = [
            line.split()
            for line in judged.stdout.splitlines()
            if line.strip().startswith(("accept", "review", "reject"))
        ]
        assert sum(int(v[-1]) for v in verdicts[:3]) == clips, judged.stdout


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_limit_that_is_not_a_finite_number_is_refused(root, tmp_path: Path, curate, value: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "bad.toml"
    config.write_text(f"[filter.rules.too_short]\nmin = {value}\n")
    done = curate("filter", str(root), "-c", str(config))
    assert done.returncode == 2 and "filter.rules.too_short.min" in done.stderr and "finite" in done.stderr


def test_report_on_clips_committed_before_their_video_row(root, curate) -> None:  # type: ignore[no-untyped-def]
    """As during a run, or after kill -9 between a batch's clips and its video rows."""
    dataset = DatasetRoot(root)
    dataset.record("drop-videos", {}, {"videos": [p.name for p in dataset.parts("videos")]})
    assert count(curate, root, "videos") == 0 and count(curate, root) > 0
    done = curate("report", str(root))
    assert done.returncode == 0, done.stderr
    page = (root / "report.html").read_text()
    assert "partial run:" in page and "committed before their video" in page


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE COPY (select 'x' as clip_id) TO '{part}' (FORMAT parquet)",
        "COPY (select 'x' as clip_id) TO '{part}' (FORMAT parquet)",
        "select 1; COPY (select 'x' as clip_id) TO '{part}' (FORMAT parquet)",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
        "select * from read_text('/etc/hostname')",
        "ATTACH '{root}/x.db' AS x",
    ],
    ids=["explain-analyze-copy", "copy", "second-statement", "explain-create", "read-outside", "attach"],
)
def test_a_query_cannot_write_or_read_outside_the_root(root, curate, sql: str) -> None:  # type: ignore[no-untyped-def]
    part = DatasetRoot(root).parts("clips")[0]
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    done = curate("query", str(root), sql.format(part=part, root=root))
    assert done.returncode in (1, 2) and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before, "nothing in the root written"


def test_query_output_and_export_sql_stay_in_their_lanes(root, tmp_path: Path, curate) -> None:  # type: ignore[no-untyped-def]
    part = DatasetRoot(root).parts("clips")[0]
    done = curate("query", str(root), "select 1 as x", "-f", "parquet", "--output", str(part))
    assert done.returncode == 2 and "is inside the dataset root" in done.stderr
    assert (
        curate(
            "query", str(root), "select 1 as x", "-f", "csv", "--output", str(tmp_path / "x.csv")
        ).returncode
        == 0
    )
    for option in ("--where", "--group"):
        sneaky = "(select count(*) from read_text('/etc/hostname')) > 0"
        done = curate("export", str(root), "--name", f"n{option[2:]}", option, sneaky)
        assert done.returncode != 0 and "file system operations are disabled" in done.stderr, done.stderr
    written = curate("export", str(root), "--name", "fine", "--where", "c.duration_s > 1")
    assert written.returncode == 0, written.stderr


@pytest.mark.parametrize("command", ["compact", "check", "filter", "report", "query", "export"])
def test_a_folder_that_is_no_root_is_refused_and_left_as_it_was(tmp_path: Path, curate, command: str) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.txt").write_text("not a root")
    extra = {"query": ["select 1"], "export": ["--name", "x"]}.get(command, [])
    done = curate(command, str(folder), *extra)
    assert done.returncode == 2 and f"{folder} is not a dataset root" in done.stderr, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.txt"], "nothing written into it"
    missing = curate(command, str(tmp_path / "nowhere"), *extra)
    assert missing.returncode == 1 and "does not exist" in missing.stderr, missing.stderr


def test_pipes_and_devices_are_failures_of_their_own_and_file_uris_are_paths(
    video, tmp_path: Path, curate
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "pipe.mp4")  # opening it would block the run
    (folder / "zero.mp4").symlink_to("/dev/zero")  # reading it would never end
    listed = tmp_path / "list.txt"
    listed.write_text(f"file://{video('vr_face_5.mp4')}\n")
    config = tmp_path / "face.toml"
    config.write_text('[run]\nextractors = ["face"]\nexecutor = "sequential"\n')
    done = curate(
        "run", str(folder), str(listed), "-o", str(tmp_path / "root"), "-c", str(config), "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    assert "pipe.mp4: a FIFO, not a regular file" in done.stderr
    failures = curate(
        "query", str(tmp_path / "root"), "select uri, reason from failures order by uri", "-f", "csv"
    )
    assert failures.stdout.replace('"', "").splitlines()[1:] == [
        f"{folder / 'pipe.mp4'},not_regular_file",
        f"{folder / 'zero.mp4'},not_regular_file",
    ]
    videos = curate(
        "query", str(tmp_path / "root"), "select uri from videos where cardinality(errors) = 0", "-f", "csv"
    )
    assert videos.stdout.replace('"', "").splitlines()[1:] == [str(video("vr_face_5.mp4"))], (
        "the file:// line read as its path"
    )


def test_a_part_deleted_by_hand_is_damaged_and_repair_commits_its_removal(root, curate) -> None:  # type: ignore[no-untyped-def]
    part = DatasetRoot(root).parts("decisions")[0]
    part.unlink()
    found = curate("check", str(root))
    assert found.returncode == 1 and f"damaged: decisions/{part.name}" in found.stdout
    fixed = curate("check", str(root), "--repair")
    assert fixed.returncode == 0 and f"decisions/{part.name} -> (gone)" in fixed.stdout, (
        fixed.stdout + fixed.stderr
    )
    assert "Errno" not in fixed.stderr and curate("check", str(root)).returncode == 0
