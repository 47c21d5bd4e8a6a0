"""Where a dataset root's files live: a local folder, or a prefix of an object store (fsspec).

:class:`DatasetRoot` names its files by paths relative to the root (``clips/part-<key>.parquet``,
``_log/<ns>-<key>.json``) and leaves every byte moved to one of two storages with the same
methods:

- :class:`LocalStorage`: a folder. A file is written to a temporary file beside it, fsynced and
  renamed over its name, so readers see all of it or nothing; moves are renames.
- :class:`ObjectStorage`: ``s3://bucket/prefix`` (or any fsspec URL). There is no rename, and
  none is needed: one PUT makes an object visible whole or not at all (a large file goes up as a
  multipart upload, visible only when completed), so files and commit records are written
  directly; a move is a copy and a delete. Listings are never cached: a reader polling the commit
  log must see new records.

Object-store settings come from the environment, the standard way of the store's client: for S3,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` and, for an
S3-compatible server, ``AWS_ENDPOINT_URL`` (botocore's own) or ``FSSPEC_S3_ENDPOINT_URL``
(fsspec's config from the environment).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from settings.errors import EnvironmentRefused, InvalidInput

PARQUET_MAGIC = b"PAR1"


class RemoteRoot(InvalidInput, ValueError):
    """An operation that needs a local dataset root was given an object-store root."""


def is_remote(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` locations other than ``file://``."""
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


def open_storage(location: str | os.PathLike[str]) -> LocalStorage | ObjectStorage:
    text = os.fspath(location)
    if is_remote(text):
        return ObjectStorage(text)
    return LocalStorage(Path(text.removeprefix("file://")))


class NotAFile(EnvironmentRefused, OSError):
    """An entry of a dataset root that should be a regular file is a FIFO, device or folder."""


class Oversized(EnvironmentRefused, OSError):
    """An entry of a dataset root is larger than anything the project writes there."""


def _within(where: str | Path, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise Oversized(f"{where} holds {size} bytes, over the {max_bytes} such a file may hold: not read")


class LinkInRoot(EnvironmentRefused, OSError):
    """An entry of a dataset root on the way to a file to write, delete, move or lock is a
    symbolic link: nothing is written or deleted through a link (it could point anywhere)."""


class LocalStorage:
    """A dataset root in a local (or network-mounted) folder."""

    remote = False

    def __init__(self, path: Path):
        self.path = path

    @property
    def uri(self) -> str:
        return str(self.path)

    def location(self, rel: str) -> str:
        """The file's path, as a string."""
        return str(self.path / rel)

    def arrow(self, rel: str) -> tuple[pafs.FileSystem | None, str]:
        """What pyarrow opens the file with: (filesystem, path); no filesystem for a local file."""
        return None, str(self.path / rel)

    def exists(self, rel: str = "") -> bool:
        return (self.path / rel).exists()

    def is_dir(self, rel: str = "") -> bool:
        return (self.path / rel).is_dir()

    def files(self, rel: str = "") -> list[str]:
        """Names of the regular files directly in the folder ``rel`` (none when it does not exist
        or is a link; links are not listed)."""
        try:
            with os.scandir(self._unlinked(rel, leaf=True)) as entries:
                return [e.name for e in entries if e.is_file(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError, LinkInRoot):
            return []

    def folders(self, rel: str = "") -> list[str]:
        """Names of the real folders directly in ``rel`` (a link to a folder is not one)."""
        try:
            with os.scandir(self._unlinked(rel, leaf=True)) as entries:
                return [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError, LinkInRoot):
            return []

    def _unlinked(self, rel: str, leaf: bool = False) -> Path:
        """The path of ``rel``, once no folder between the root and it (nor, with ``leaf``, the
        entry itself) is a symbolic link; raises :class:`LinkInRoot` naming the link."""
        path, names = self.path, [n for n in rel.split("/") if n]
        for i, name in enumerate(names):
            path = path / name
            if (leaf or i < len(names) - 1) and path.is_symlink():
                kind = "folder" if i < len(names) - 1 else "file"
                raise LinkInRoot(
                    f"{path} is a symbolic link: nothing in a dataset root is written or deleted "
                    f"through a link; replace it with a real {kind} (`curate check` names what it holds)"
                )
        return path

    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        """The bytes of the regular file ``rel``: a link is not followed, a FIFO or device is
        refused (:class:`NotAFile`) before anything blocks on it, and so is a file over
        ``max_bytes`` (:class:`Oversized`) before it is read."""
        path = self._unlinked(rel, leaf=True)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                raise NotAFile(f"{path} is not a regular file (a FIFO, device or folder): nothing reads it")
            _within(path, found.st_size, max_bytes)
            return fh.read()

    def write(self, rel: str, write: Callable[[Path], object]) -> None:
        """``write(tmp)`` a temporary file beside the target, fsync it and rename it over the
        target: readers see the old file or the whole new one, never a part."""
        path = self._unlinked(rel)  # a link in its place is replaced, never written through
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            write(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.write(rel, lambda tmp: tmp.write_bytes(data))

    def append_text(self, rel: str, text: str) -> str:
        """Append ``text`` to the file ``rel``; returns the relative path written."""
        path = self._unlinked(rel, leaf=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(text)
        return rel

    def delete(self, rel: str) -> None:
        """Delete the file ``rel`` (a link in its place: the link, never what it points to)."""
        self._unlinked(rel).unlink(missing_ok=True)

    def move(self, rel: str, to: str) -> None:
        target = self._unlinked(to)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._unlinked(rel), target)

    def is_complete_parquet(self, rel: str) -> bool:
        """Whether the file starts and ends with Parquet's magic bytes (a truncated or
        overwritten part does not); two 4-byte reads, no parsing."""
        return is_complete_parquet_file(self.path / rel)

    def temporaries(self) -> list[str]:
        """Temporary files a killed writer left (``.<name>.<hex>.tmp`` in a table folder, ``_log``
        or a project folder inside ``_log``: ``_log/_copy``)."""
        folders = [*self.folders(), *(f"_log/{sub}" for sub in self.folders("_log"))]
        return [
            f"{folder}/{name}"
            for folder in folders
            for name in self.files(folder)
            if name.startswith(".") and name.endswith(".tmp")
        ]


def is_complete_parquet_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a link, a pipe or a device, which are never
    opened: a FIFO would block the reader) that starts and ends with Parquet's magic bytes."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0, os.SEEK_END)
            if fh.tell() < 12:
                return False
            fh.seek(-4, os.SEEK_END)
            return head == PARQUET_MAGIC and fh.read(4) == PARQUET_MAGIC
    except OSError:
        return False


class ObjectStorage:
    """A dataset root under a prefix of an object store, through fsspec (``s3://bucket/prefix``)."""

    remote = True

    def __init__(self, uri: str):
        self._uri = uri.rstrip("/")
        self.protocol = self._uri.split("://", 1)[0]
        self._fs: Any = None
        self._base = ""
        self._arrow: pafs.FileSystem | None = None
        self._complete: set[str] = set()  # parts found whole: files are immutable once written

    def __getstate__(self) -> dict[str, Any]:
        """Shipped to a worker without the client: each process makes its own."""
        return {**self.__dict__, "_fs": None, "_arrow": None, "_complete": set()}

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (made on first use, with listings never cached)."""
        if self._fs is None:
            import fsspec

            self._fs, self._base = fsspec.core.url_to_fs(self._uri, use_listings_cache=False)
            self._base = self._base.rstrip("/")
        return self._fs

    def key(self, rel: str) -> str:
        """The filesystem's path of the file (``bucket/prefix/rel``, no scheme)."""
        _ = self.fs
        return f"{self._base}/{rel}" if rel else self._base

    def location(self, rel: str) -> str:
        return f"{self._uri}/{rel}" if rel else self._uri

    def arrow(self, rel: str) -> tuple[pafs.FileSystem | None, str]:
        if self._arrow is None:
            self._arrow = pafs.PyFileSystem(pafs.FSSpecHandler(self.fs))
        return self._arrow, self.key(rel)

    def exists(self, rel: str = "") -> bool:
        if not rel:
            return self.is_dir()
        return bool(self.fs.exists(self.key(rel)))

    def is_dir(self, rel: str = "") -> bool:
        """Whether any object lies under the prefix ``rel`` (object stores have no folders)."""
        return bool(self._entries(rel))

    def _entries(self, rel: str) -> list[dict[str, Any]]:
        try:
            return list(self.fs.ls(self.key(rel), detail=True, refresh=True))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def files(self, rel: str = "") -> list[str]:
        return [e["name"].rsplit("/", 1)[-1] for e in self._entries(rel) if e.get("type") == "file"]

    def folders(self, rel: str = "") -> list[str]:
        return [
            e["name"].rstrip("/").rsplit("/", 1)[-1]
            for e in self._entries(rel)
            if e.get("type") == "directory"
        ]

    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        """The object ``rel`` (:class:`Oversized` when over ``max_bytes``, before it is read)."""
        if max_bytes is not None:
            _within(self.location(rel), int(self.fs.size(self.key(rel))), max_bytes)
        return bytes(self.fs.cat_file(self.key(rel)))

    def write(self, rel: str, write: Callable[[Path], object]) -> None:
        """``write(tmp)`` a local temporary file, then upload it in one PUT (or one multipart
        upload): the object appears whole or not at all."""
        with tempfile.TemporaryDirectory(prefix="curate-put-") as folder:
            tmp = Path(folder) / rel.rsplit("/", 1)[-1]
            write(tmp)
            self.fs.put_file(str(tmp), self.key(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self.key(rel), data)

    def append_text(self, rel: str, text: str) -> str:
        """Objects cannot be appended to: each text goes to its own object beside ``rel``
        (``logs/<run>.log`` -> ``logs/<run>.log.d/<time>-<hex>.log``); returns its relative path."""
        name = f"{rel}.d/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.log"
        self.write_bytes(name, text.encode())
        return name

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.key(rel))

    def move(self, rel: str, to: str) -> None:
        """Copy, then delete: not atomic, and it need not be (a move follows a commit record
        that already names the file dead; a copy left by a kill is only an extra copy)."""
        self.fs.copy(self.key(rel), self.key(to))
        self.delete(rel)

    def is_complete_parquet(self, rel: str) -> bool:
        if rel in self._complete:
            return True
        try:
            size = int(self.fs.size(self.key(rel)))
            if size < 12:
                return False
            head = self.fs.cat_file(self.key(rel), start=0, end=4)
            tail = self.fs.cat_file(self.key(rel), start=size - 4, end=size)
        except OSError:
            return False
        whole = head == PARQUET_MAGIC and tail == PARQUET_MAGIC
        if whole:
            self._complete.add(rel)
        return whole

    def temporaries(self) -> list[str]:
        return []  # nothing is written under a temporary name

    # -- conditional writes (the lease lock) ---------------------------------------------------

    def create_exclusive(self, rel: str, data: bytes) -> str | None:
        """Create the object only if no object has its name (S3 ``If-None-Match: *``); returns its
        ETag, or None when it already exists."""
        try:
            out = self.fs.pipe_file(self.key(rel), data, mode="create")
        except FileExistsError:
            return None
        return _etag(out)

    def replace_if(self, rel: str, data: bytes, etag: str) -> str | None:
        """Overwrite the object only if it is still the version ``etag`` (S3 ``If-Match``);
        returns the new ETag, or None when the object changed or is gone."""
        try:
            out = self.fs.pipe_file(self.key(rel), data, IfMatch=etag)
        except OSError:
            return None
        return _etag(out)

    def read_versioned(self, rel: str) -> tuple[bytes, str] | None:
        """The object's bytes and its ETag (taken before the bytes: a later change makes the
        ETag stale, so a conditional write with it fails rather than overwriting what was not
        read), or None when there is none."""
        try:
            etag = str(self.fs.info(self.key(rel), refresh=True)["ETag"])
            return self.read_bytes(rel), etag
        except FileNotFoundError:
            return None

    @property
    def conditional_writes(self) -> bool:
        """Whether the store takes conditional PUTs (S3 and S3-compatible servers)."""
        return self.protocol in ("s3", "s3a")


def _etag(response: Any) -> str:
    if isinstance(response, dict) and response.get("ETag"):
        return str(response["ETag"])
    raise OSError("the object store did not return an ETag for a conditional write")
