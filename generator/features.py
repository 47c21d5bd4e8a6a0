"""Speech features of the generator, on the blendshapes' frame grid, cached beside the shards.

Two kinds (``docs/generator.md`` compares them on held-out speakers):

- ``whisper-tiny-en``: the encoder states of the Whisper model faster-whisper already loads (384
  values at 50 Hz, trained on 680,000 hours of many voices to carry phonetic content),
  interpolated onto the frames;
- ``log-mel``: 80 log mel energies per frame (no model).

Either way a clip's rows are centred (its mean subtracted), which takes out what is constant in
a recording (the voice, the room, the microphone). Frame ``k`` is centred at ``k / fps`` s of the
clip's audio; shape (n_frames, dim).

The cache: ``EXPORT/features/<kind>/<shard file stem>.npz``, one float16 array per clip id,
written once (atomically) by :func:`generator.data.ensure_features` and read by the data streams, so training
and evaluation never encode a clip twice.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Literal

import numpy as np

from extractors.sync.features import WhisperEncoder, log_mel_frames

FeatureKind = Literal["whisper-tiny-en", "log-mel"]
FEATURE_DIMS: dict[str, int] = {"whisper-tiny-en": 384, "log-mel": 80}
WHISPER_MODEL = "whisper-tiny-en"


def model_needed(kind: str) -> str | None:
    """The model registry name the features of ``kind`` load, if any."""
    return WHISPER_MODEL if kind.startswith("whisper") else None


class FrameFeatures:
    """Audio (16 kHz mono float32) -> features of ``kind`` on a frame grid, (n_frames, dim) float32.

    ``model_dir``: the resolved folder of the Whisper model (``settings.models.resolve``); unused
    for log-mel.
    """

    def __init__(self, kind: str, model_dir: Path | None = None, threads: int = 1):
        if kind not in FEATURE_DIMS:
            raise ValueError(f"unknown generator features {kind!r}: one of {sorted(FEATURE_DIMS)}")
        if model_needed(kind) and model_dir is None:
            raise ValueError(f"the {kind} features need the model folder of {model_needed(kind)!r}")
        self.kind = kind
        self.dim = FEATURE_DIMS[kind]
        self._encoder = WhisperEncoder(model_dir, threads) if model_dir and model_needed(kind) else None

    def __call__(self, audio: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        if self._encoder is not None:
            return self._encoder.frames(audio, fps, n_frames, context=0).astype(np.float32)
        return log_mel_frames(audio, fps, n_frames, self.dim, context=0)


def load_frame_features(kind: str, threads: int = 1) -> FrameFeatures:
    """:class:`FrameFeatures` of ``kind``, its model resolved through the registry (never downloads)."""
    from extractors.registry import model_spec
    from settings.models import resolve

    name = model_needed(kind)
    return FrameFeatures(kind, resolve(model_spec(name)) if name else None, threads)


def cache_path(export_dir: Path, kind: str, shard: Path) -> Path:
    """Where the features of ``kind`` for the clips of shard file ``shard`` are kept."""
    return export_dir / "features" / kind / f"{shard.stem}.npz"


def read_cached(path: Path) -> dict[str, np.ndarray]:
    """Clip id -> features (n_frames, dim) float32 of one cache file."""
    with np.load(path) as held:
        return {clip_id: held[clip_id].astype(np.float32) for clip_id in held.files}


def write_cached(path: Path, features: dict[str, np.ndarray]) -> None:
    """Write one cache file through a temporary name and a rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.npz")
    try:
        np.savez(tmp, allow_pickle=False, **{k: v.astype(np.float16) for k, v in features.items()})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
