"""Links inside a dataset root are never followed to write or delete: a linked folder, a linked
table folder, a linked lock file and a linked report, each on a copy of the fixture run. Every
file outside the root is compared byte for byte before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runs import copy_root

from manifests.store import DatasetRoot

pytestmark = pytest.mark.slow  # a copy of the fixture run


@pytest.fixture
def root(fixture_run: Any, tmp_path: Path) -> Path:
    return copy_root(fixture_run.root, tmp_path / "root")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the root holding files named as a root's parts and temporaries are."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    for name in ("part-a.parquet", ".part-b.parquet.1234.tmp", "secret.txt"):
        (folder / name).write_bytes(f"not the root's: {name}\n".encode())
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_linked_folder_is_neither_swept_nor_compacted_through(
    root: Path, outside: Path, curate: Any
) -> None:
    before = contents(outside)
    (root / "extra").symlink_to(outside)
    assert DatasetRoot(root).sweep() == 0  # what `curate run` does first
    done = curate("compact", str(root))
    assert done.returncode == 0, done.stderr
    assert contents(outside) == before
    checked = curate("check", str(root))
    assert checked.returncode == 1 and "symbolic link extra:" in checked.stdout


def test_a_linked_table_folder_is_refused_and_loses_nothing(root: Path, tmp_path: Path, curate: Any) -> None:
    rows = curate("query", str(root), "select count(*) n from tracks", "-f", "csv").stdout
    moved = tmp_path / "tracks-elsewhere"
    (root / "tracks").rename(moved)
    (root / "tracks").symlink_to(moved)
    before = contents(moved)
    done = curate("compact", str(root))
    assert done.returncode == 4, done.stderr
    assert "tracks is a symbolic link" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert contents(moved) == before
    (root / "tracks").unlink()  # the link replaced by what it points to, as `check` says
    moved.rename(root / "tracks")
    assert curate("query", str(root), "select count(*) n from tracks", "-f", "csv").stdout == rows


def test_a_linked_lock_is_never_truncated(root: Path, outside: Path, curate: Any) -> None:
    (root / ".lock").symlink_to(outside / "secret.txt")
    before = contents(outside)
    done = curate("filter", str(root))
    assert done.returncode == 4 and ".lock is a symbolic link" in done.stderr, done.stderr
    assert contents(outside) == before


def test_a_linked_report_is_replaced_not_written_through(root: Path, outside: Path, curate: Any) -> None:
    (root / "report.html").symlink_to(outside / "secret.txt")
    before = contents(outside)
    done = curate("report", str(root))
    assert done.returncode == 0, done.stderr
    assert contents(outside) == before
    report = root / "report.html"
    assert not report.is_symlink() and report.read_text().startswith("<!DOCTYPE html>")
