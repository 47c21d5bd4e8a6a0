"""`curate query` is sandboxed to the root: no temporary folder of the working directory is
readable, --read takes only existing folders, and a query has a memory limit and a timeout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # the CLI over the fixture run


def test_the_working_directorys_tmp_is_not_readable(
    fixture_run: Any, curate_argv: Any, tmp_path: Path
) -> None:
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.txt").write_text("SECRET")
    sql = f"select content from read_text('{tmp_path}/.tmp/secret.txt')"
    done = subprocess.run(
        curate_argv("query", str(fixture_run.root), sql), cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1 and "SECRET" not in done.stdout + done.stderr, done.stdout
    assert "file system operations are disabled" in done.stderr


@pytest.mark.parametrize("folder", ["", "no-such-folder"])
def test_read_takes_only_existing_folders(fixture_run: Any, curate: Any, folder: str) -> None:
    done = curate("query", str(fixture_run.root), "select 1 as one", "--read", folder)
    assert done.returncode == 2 and "not an existing folder" in done.stderr, done.stderr


def test_a_query_is_stopped_at_its_timeout_and_its_memory_limit(fixture_run: Any, curate: Any) -> None:
    endless = curate(
        "query", str(fixture_run.root), "select count(*) from range(1e13::bigint)", "--timeout-s", "2"
    )
    assert endless.returncode == 1 and "stopped after 2 s (--timeout-s)" in endless.stderr, endless.stderr
    greedy = curate(
        "query", str(fixture_run.root), "select list(range) from range(1e9::bigint)", "--memory-mb", "128"
    )
    assert greedy.returncode == 1 and "--memory-mb 128" in greedy.stderr, greedy.stderr
    assert len(greedy.stderr.strip().splitlines()) == 1
    ok = curate(
        "query", str(fixture_run.root), "select count(*) n from clips", "-f", "csv", "--memory-mb", "128"
    )
    assert ok.returncode == 0 and ok.stdout.splitlines()[1].isdigit()
