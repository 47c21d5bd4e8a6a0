"""One writer per dataset root: an advisory lock held for the whole of a run.

The lock is ``flock`` on ``ROOT/.lock``: the kernel releases it when its holder exits, however
it exits, so a run killed with ``kill -9`` leaves no lock behind that blocks the next one. The
file also says who holds it (run id, pid, host, start time), for the refusal message. On a
network filesystem the lock is only as good as the filesystem's ``flock``.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from manifests.store import DatasetRoot


class RootBusy(RuntimeError):
    """Another live run holds the dataset root."""


@contextmanager
def hold(root: DatasetRoot, run_id: str) -> Iterator[None]:
    """Hold ``root``'s lock for the duration of the block, or raise :class:`RootBusy` at once."""
    root.path.mkdir(parents=True, exist_ok=True)
    path = root.path / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RootBusy(
                f"{root.path} is in use by {_holder(fd)}; wait for it to finish or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        info = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"run {info['run_id']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (ValueError, KeyError):
        return "another run"
