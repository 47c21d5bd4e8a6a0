"""What the run tests of a Ray cluster share: the fixture run's facts, a fast config, and the
tables of a root counted.

Fixture facts used: the 11 fixture videos give 13 clips (see tests/test_run_fixtures.py).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.query import query

FIXTURE_VIDEOS, FIXTURE_CLIPS = 11, 13
EXPECTED_FAILURES = {"no_speech": 5, "no_face": 3, "no_audio": 2}
# Batches of two clips: a kill lands between commits, and a killed worker holds finished clips.
FAST = '[run]\nbatch_clips = 2\n[speech]\nmodel = "whisper-tiny-en"\nlanguages = []\n[ray]\nobject_store_mb = 256\n'


def counts(root: Path) -> dict[str, int]:
    sql = (
        "select (select count(*) from videos) videos, (select count(distinct video_id) from videos) uvideos,"
        " (select count(*) from clips) clips, (select count(distinct clip_id) from clips) uclips,"
        " (select count(*) from tracks) tracks"
    )
    return query(root, sql).to_pylist()[0]


def failures(root: Path) -> dict[str, int]:
    rows = query(root, "select reason, count(*) n from failures group by reason").to_pylist()
    return {r["reason"]: r["n"] for r in rows}


def last_summary(root: Path) -> dict[str, Any]:
    latest = max((root / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(latest.read_text())


def wait_for(condition: Callable[[], Any], timeout_s: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what}")
        time.sleep(0.2)


def copy_root(root: Path, to: Path) -> Path:
    """A copy of the dataset root ``root`` at ``to``, without its lock, staging, exports and
    review media (for tests that append to a shared root)."""
    shutil.copytree(root, to, ignore=shutil.ignore_patterns(".lock", "_staging", "exports", "review_media"))
    return to
