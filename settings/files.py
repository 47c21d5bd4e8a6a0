"""Files the user names (a config, a model, a checkpoint, a list of inputs) are opened only once
they are known to be regular files: a FIFO or a device would block the command, a folder fails
with an unclear error."""

from __future__ import annotations

import stat
from pathlib import Path

from settings.errors import InvalidInput


class NotARegularFile(InvalidInput, ValueError):
    """A file the command was told to read is a FIFO, device, socket or folder."""


def not_regular(path: Path) -> str | None:
    """What ``path`` is when it exists but is no regular file (links followed): ``a FIFO``,
    ``a device``...; ``None`` for a regular file or a missing one."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return None


def regular_file(path: str | Path, what: str) -> Path:
    """``path``, once it is not a FIFO, device, socket or folder (:class:`NotARegularFile`, naming
    ``what`` it was meant to be: "config file", "sync model"...); a missing file is left to the
    reader, whose error says so."""
    path = Path(path)
    kind = not_regular(path)
    if kind is not None:
        raise NotARegularFile(f"{what} {path} is {kind}, not a regular file: nothing reads it")
    return path
