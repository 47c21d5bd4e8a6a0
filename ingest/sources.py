"""Turning what the user names (folders, globs, list files, URIs) into a list of video inputs,
and making remote inputs local.

A name that matches nothing is kept as an input, so it is recorded as a ``missing_file``
failure instead of vanishing from the run.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from settings.errors import InvalidInput
from settings.files import not_regular

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp"}
)
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list", ".csv"})


def is_uri(name: str) -> bool:
    """True for ``scheme://...`` names other than ``file://``."""
    return "://" in name and not name.startswith("file://")


def file_path(name: str) -> str:
    """A ``file://`` URI as the local path it names (``file:///a/b%20c.mp4`` -> ``/a/b c.mp4``);
    other names as they are."""
    if not name.startswith("file://"):
        return name
    from urllib.parse import unquote, urlparse

    parsed = urlparse(name)
    return unquote(parsed.path) if parsed.netloc in ("", "localhost") else name


def _from_list_file(path: Path, tags: dict[str, dict[str, str]] | None) -> list[str]:
    base = path.parent

    def located(name: str) -> str:
        name = file_path(name)
        return name if is_uri(name) or Path(name).is_absolute() else str(base / name)

    if path.suffix != ".csv":
        lines = (line.strip() for line in path.read_text().splitlines())
        return [located(line) for line in lines if line and not line.startswith("#")]
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "uri" not in reader.fieldnames:
            raise ValueError(f"{path}: a CSV list needs a 'uri' column (found {reader.fieldnames})")
        rows = [row for row in reader if row["uri"] and row["uri"].strip()]
    names = [located(row["uri"].strip()) for row in rows]
    if tags is not None:
        for name, row in zip(names, rows, strict=True):
            extra = {k: (v or "").strip() for k, v in row.items() if k and k != "uri"}
            tags[_absolute(name)] = extra
    return names


def _absolute(name: str) -> str:
    return name if is_uri(name) else os.path.abspath(name)


class ListLoop(InvalidInput, ValueError):
    """A list file names itself, or names a list that leads back to it."""


def expand_sources(
    sources: Iterable[str], tags: dict[str, dict[str, str]] | None = None, _within: tuple[Path, ...] = ()
) -> list[str]:
    """Video inputs named by ``sources``, in order, without repeating a name.

    ``tags``, when given, receives for each input named by a CSV list its other columns (e.g.
    ``speaker_id``), keyed by the input as returned; they become ``videos.source_tags``.

    - a folder: every file with a video suffix below it (recursive, sorted), links included;
    - a file with a list suffix (.txt .lst .list: one path or URI a line, ``#`` comments;
      .csv: a ``uri`` column, any other columns are tags); relative entries are relative to the
      list file;
    - a glob pattern (``*``, ``?``, ``[``): the files it matches;
    - anything else: taken as one video path or URI.

    A list that names itself, directly or through other lists, raises :class:`ListLoop`.
    """
    out: list[str] = []
    for source in sources:
        source = file_path(source)
        path = Path(source)
        if is_uri(source):
            out.append(source)
        elif path.is_dir():
            out.extend(
                # Links that lead nowhere (dangling, looping), pipes and devices are kept: they
                # become failures by name.
                str(p)
                for p in sorted(path.rglob("*"))
                if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir()
            )
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            here = path.resolve()
            if here in _within:
                chain = " -> ".join(str(p) for p in (*_within, here))
                raise ListLoop(f"the list file {path} names itself ({chain}): remove the loop")
            out.extend(expand_sources(_from_list_file(path, tags), tags, (*_within, here)))
        elif glob.has_magic(source):
            out.extend(sorted(glob.glob(source, recursive=True)))
        else:
            out.append(str(path))
    # Local names are recorded absolute, so manifests stay valid from any working directory.
    return list(dict.fromkeys(_absolute(n) for n in out))


def unreadable(inputs: Iterable[str]) -> dict[str, str]:
    """Local inputs that cannot be opened, with why (URIs are left to the run): a cheap check made
    before any model or cluster starts, so a typo is named at once."""
    found = {}
    for name in inputs:
        if is_uri(name):
            continue
        path = Path(name)
        if not path.exists():
            found[name] = "no such file" if not path.is_symlink() else "a link that leads nowhere"
        elif not path.is_file():
            found[name] = f"{not_regular(path) or 'something'}, not a regular file"
        elif not os.access(path, os.R_OK):
            found[name] = "not readable"
    return found


def localize(name: str, staging: Path) -> Path:
    """A local path holding the bytes of ``name``; URIs are copied into ``staging`` with fsspec.

    Raises ``FileNotFoundError`` for a URI that does not exist and ``OSError`` (or the
    filesystem's own error) when the store cannot be read.
    """
    if not is_uri(name):
        return Path(file_path(name))
    import fsspec  # imported here: only remote inputs need it

    staging.mkdir(parents=True, exist_ok=True)
    suffix = Path(name.split("?")[0]).suffix
    target = staging / (hashlib.sha256(name.encode()).hexdigest()[:24] + suffix)
    if not target.exists():
        tmp = target.with_name("." + target.name + ".tmp")
        with fsspec.open(name, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.replace(target)
    return target
