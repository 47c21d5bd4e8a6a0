"""Peak memory of a process and every process it started (Ray's workers too), and peak size of a
folder, sampled while a block runs.

    with Peak(folder) as peak:
        work()
    peak.rss_mb, peak.folder_mb
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def descendants(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc (Linux)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def tree_rss_mb(pid: int | None = None) -> float:
    """Resident memory (MB) of ``pid`` (this process) and every process below it."""
    total = 0
    for p in descendants(pid or os.getpid()):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1])
        except OSError:
            continue
    return total * PAGE_MB


def folder_mb(folder: Path) -> float:
    """Bytes (in MB) of the files under ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.exists() else 0.0


class Peak:
    """Samples :func:`tree_rss_mb` (and :func:`folder_mb` of ``folder``) every ``every_s`` seconds
    while the block runs; ``rss_mb`` and ``folder_mb`` are the largest samples."""

    def __init__(self, folder: Path | None = None, every_s: float = 0.1) -> None:
        self.folder, self.every_s = folder, every_s
        self.rss_mb = self.folder_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.rss_mb = max(self.rss_mb, tree_rss_mb())
            if self.folder is not None:
                self.folder_mb = max(self.folder_mb, folder_mb(self.folder))
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
