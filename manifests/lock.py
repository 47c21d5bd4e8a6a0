"""One writer per dataset root: a lock held for the whole of a run (or a compaction, a filter...).

On a local root the lock is ``flock`` on ``ROOT/.lock``: the kernel releases it when its holder
exits, however it exits, so a run killed with ``kill -9`` leaves no lock behind that blocks the
next one. The file also says who holds it (run id, pid, host, start time), for the refusal
message. On a network filesystem the lock is only as good as the filesystem's ``flock``.

On an object-store root (S3 and S3-compatible servers) the lock is a lease: the object
``ROOT/.lock`` holds the holder's run id, pid, host, a random token and an expiry time. It is
created with a conditional PUT (``If-None-Match: *``), so of two runs starting at once exactly one
creates it; the holder renews the expiry every :data:`LEASE_S` / 3 seconds from a background
thread with a PUT conditional on the version it wrote last (``If-Match``), and deletes the object
when done. A lock whose expiry has passed (its holder was killed, or lost the network for longer
than the lease) is taken over by a conditional PUT on the version read, so of two runs taking it
over one wins; so is the lock of a holder that ran on this host and whose process is gone
(killed with ``kill -9``), at once: as with ``flock``, the next run on the same machine is not
blocked. Expiry is judged by the taker's clock against the holder's: clocks must agree to
well within the lease (NTP does). A holder whose renewal finds the lock no longer its own (it
stalled past the lease and another run took over) warns at once and raises :class:`LockLost` when
its block ends. Stores without conditional writes (other fsspec protocols) get a best-effort
lease: written when absent or expired, then read back to check the token; one writer per such
root is the user's job.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from manifests.fs import LinkInRoot, LocalStorage, ObjectStorage
from manifests.store import DatasetRoot
from settings.errors import RootInUse

LOCK = ".lock"
#: Seconds an object-store lock lasts without renewal: how long a run killed on another machine
#: blocks the root (``$CURATE_LOCK_LEASE_S`` to change it).
LEASE_S = 60.0


def lease_s() -> float:
    return float(os.environ.get("CURATE_LOCK_LEASE_S", LEASE_S))


class RootBusy(RootInUse, RuntimeError):
    """Another live run holds the dataset root."""


class LockLost(RootInUse, RuntimeError):
    """The object-store lock expired while held (its renewals failed) and another run took it."""


@contextmanager
def hold(root: DatasetRoot, run_id: str) -> Iterator[None]:
    """Hold ``root``'s lock for the duration of the block, or raise :class:`RootBusy` at once."""
    if isinstance(root.storage, ObjectStorage):
        with _lease(root.storage, run_id, lease_s()):
            yield
        return
    assert isinstance(root.storage, LocalStorage)
    root.storage.path.mkdir(parents=True, exist_ok=True)
    path = root.storage.path / LOCK
    try:  # never through a link: locking would truncate what it points to
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise LinkInRoot(f"{path} is a symbolic link, not the root's lock file: remove it") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RootBusy(
                f"{root.uri} is in use by {_holder(fd)}; wait for it to finish or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_who(run_id)).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _who(run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "started": _started(os.getpid()),
    }


def _started(pid: int) -> str | None:
    """When the process ``pid`` started (clock ticks since boot, Linux), to tell it from a later
    process given the same pid; None when there is no such process or no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _dead_here(held: dict[str, Any]) -> bool:
    """Whether the holder ran on this host and its process is gone (killed, crashed): its lock
    need not wait out the lease, as ``flock``'s does not."""
    if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return False
    if not os.path.isdir("/proc"):
        return False
    started = _started(held["pid"])
    return started is None or (held.get("started") is not None and started != held["started"])


def _holder(fd: int) -> str:
    try:
        return _describe(json.loads(os.pread(fd, 4096, 0) or b"{}"))
    except ValueError:
        return "another run"


def _describe(info: dict[str, Any]) -> str:
    try:
        return f"run {info['run_id']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except KeyError:
        return "another run"


class _Lease:
    """The lock object of an object-store root, held by this process."""

    def __init__(self, storage: ObjectStorage, run_id: str, lease_s: float):
        self.storage = storage
        self.lease_s = lease_s
        self.info = {**_who(run_id), "token": uuid.uuid4().hex}
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="curate-lock-lease", daemon=True)

    def _body(self) -> bytes:
        return json.dumps({**self.info, "expires": time.time() + self.lease_s}).encode()

    def acquire(self) -> None:
        for _ in range(5):
            if self._try_acquire():
                self._thread.start()
                return
        raise RootBusy(f"{self.storage.uri} is in use by another run (its lock changes hands); try again")

    def _try_acquire(self) -> bool:
        conditional = self.storage.conditional_writes
        if conditional:
            self.etag = self.storage.create_exclusive(LOCK, self._body())
            if self.etag is not None:
                return True
        found = self.storage.read_versioned(LOCK)
        if found is None:
            if conditional:
                return False  # released meanwhile: try again
            self.storage.write_bytes(LOCK, self._body())
            return self._read_back()
        data, etag = found
        try:
            held = json.loads(data)
            expires = float(held["expires"])
        except (ValueError, KeyError, TypeError):
            held, expires = {}, 0.0  # unreadable: a torn best-effort write, treat as expired
        if time.time() < expires and not _dead_here(held):
            left = expires - time.time()
            raise RootBusy(
                f"{self.storage.uri} is in use by {_describe(held)}, its lease renewed until "
                f"{left:.0f} s from now; wait for it to finish or use another --out"
            )
        if conditional:
            self.etag = self.storage.replace_if(LOCK, self._body(), etag)
            return self.etag is not None
        self.storage.write_bytes(LOCK, self._body())
        return self._read_back()

    def _read_back(self) -> bool:
        found = self.storage.read_versioned(LOCK)
        if found is None or not self._ours(found[0]):
            return False
        self.etag = found[1]
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            self.renew()

    def renew(self) -> None:
        """Push the expiry on, conditional on the lock being the version this holder wrote."""
        if self.lost or self.etag is None:
            return
        try:
            if self.storage.conditional_writes:
                etag = self.storage.replace_if(LOCK, self._body(), self.etag)
                if etag is not None:
                    self.etag = etag
                    return
            else:
                self.storage.write_bytes(LOCK, self._body())
            found = self.storage.read_versioned(LOCK)
        except OSError:
            return  # the store did not answer: try again at the next renewal
        if found is not None and self._ours(found[0]):
            self.etag = found[1]  # the write went through and only its answer was lost, or no conditions
            return
        self.lost = True
        warnings.warn(
            f"lost the lock of {self.storage.uri}: another run took it over after the lease expired",
            RuntimeWarning,
            stacklevel=2,
        )

    def _ours(self, data: bytes) -> bool:
        try:
            return bool(json.loads(data).get("token") == self.info["token"])
        except (ValueError, AttributeError):
            return False

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.lost:
            return
        found = self.storage.read_versioned(LOCK)
        if found is not None and self._ours(found[0]):
            self.storage.delete(LOCK)


@contextmanager
def _lease(storage: ObjectStorage, run_id: str, lease_s: float) -> Iterator[None]:
    lease = _Lease(storage, run_id, lease_s)
    lease.acquire()
    try:
        yield
    finally:
        lease.release()
    if lease.lost:
        raise LockLost(
            f"the lock of {storage.uri} expired while this run held it and another run took it over; "
            "check the root (`curate check`) and rerun"
        )
