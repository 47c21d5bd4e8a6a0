"""A core of its own for each worker process on a host (``[ray] pin_cores``).

Workers left to the kernel's scheduler wander between cores and share them with each other's
helper threads; on a 2-core machine two pipelines side by side ran 5% slower unpinned than
pinned (docs/benchmarks.md, "Throughput"). A worker that asks for one CPU therefore claims a
core that no other curate worker on the host holds and pins all its threads there.

A claim is an exclusive ``flock`` on ``<tmp>/curate-cores/<core>.lock``, held while the process
lives: the kernel releases it when the process ends, however it ends (``kill -9`` included), so
a restarted worker or the next run finds the core free. A worker that finds every core it may
use held (another run on the same host, more workers than cores) stays unpinned.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

#: Descriptors of the lock files this process holds; open for the life of the process.
_held: list[int] = []


def lock_dir() -> Path:
    """The host's folder of core claims (shared by every user's curate workers)."""
    return Path(tempfile.gettempdir()) / "curate-cores"


def claim_core(folder: Path | None = None) -> int | None:
    """Pin every thread of this process to the lowest core it may use that no other process
    holds a claim on in ``folder`` (default :func:`lock_dir`); the core, or ``None`` when every
    core is claimed (the process then stays as it was)."""
    folder = folder or lock_dir()
    folder.mkdir(mode=0o777, exist_ok=True)
    for cpu in sorted(os.sched_getaffinity(0)):
        fd = os.open(folder / f"{cpu}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        pin_threads({cpu})
        return cpu
    return None


def pin_threads(cpus: set[int]) -> dict[int, set[int]]:
    """Pin every thread of this process to ``cpus`` (threads started later inherit it from
    their creator); the previous affinity of each, by thread id."""
    previous: dict[int, set[int]] = {}
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        try:
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return previous
