"""Audio-visual sync: how well the clip's audio explains its mouth motion, and at which shift.

No pretrained SyncNet exists offline, so the project learns its own audio -> mouth model across
clips (:class:`SyncModel`, a ridge regression from log-mel frames with context to the mouth
blendshapes; ``curate sync train`` fits it on any dataset root). A clip is scored like SyncNet:
the predicted mouth motion is correlated with the observed one at every shift within
``[sync] search_frames``; the best shift is the offset, the best correlation the confidence.

Offset convention: ``sync_offset_frames = +k`` means the audio lags the video by ``k`` frames
(the sound of a mouth movement arrives ``k / fps`` seconds after it); shifting the audio
``k`` frames earlier corrects it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from curate.models import cache_dir, resolve
from extractors.audio_features import log_mel
from extractors.base import ClipRef, Extraction, Extractor
from ingest.media import read_audio
from manifests.schema import BLENDSHAPE_NAMES
from manifests.schema import field as column

#: Mouth blendshapes the model predicts from audio.
MOUTH_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft",
    "mouthSmileRight", "mouthRollLower", "mouthRollUpper", "mouthPressLeft", "mouthPressRight",
)  # fmt: skip

#: Fewest frames with a face for a clip to be scored.
MIN_FRAMES = 30


def _smooth(x: np.ndarray) -> np.ndarray:
    """Three-frame moving average along axis 0 (edges repeated)."""
    padded = np.pad(x, ((1, 1), (0, 0)), mode="edge")
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0


def audio_inputs(audio: np.ndarray, fps: float, n_frames: int, n_mels: int, context: int) -> np.ndarray:
    """Model inputs per frame: clip-normalised, smoothed log-mel with ``context`` frames either side
    and a bias column, shape (n_frames, (2 * context + 1) * n_mels + 1)."""
    mel = log_mel(audio, fps, n_frames, n_mels).astype(np.float64)
    mel = _smooth((mel - mel.mean(axis=0)) / (mel.std() + 1e-6))
    padded = np.pad(mel, ((context, context), (0, 0)), mode="edge")
    stacked = [padded[i : i + n_frames] for i in range(2 * context + 1)]
    return np.concatenate([*stacked, np.ones((n_frames, 1))], axis=1)


def mouth_targets(
    blendshapes: Sequence[Sequence[float] | None], channels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip standardised, smoothed mouth channels, shape (n_frames, len(channels)), and the
    mask of frames with a face, shape (n_frames,)."""
    idx = [BLENDSHAPE_NAMES.index(c) for c in channels]
    rows = [
        np.asarray(b, np.float64)[idx] if b is not None else np.full(len(idx), np.nan) for b in blendshapes
    ]
    y = np.asarray(rows).reshape(len(rows), len(idx))
    valid = ~np.isnan(y).any(axis=1)
    if valid.sum() < 2:
        return np.zeros_like(y), valid
    y = np.where(valid[:, None], y, np.nanmean(y, axis=0))
    y = (y - y[valid].mean(axis=0)) / (y[valid].std(axis=0) + 1e-3)
    return _smooth(y), valid


@dataclass(frozen=True)
class SyncModel:
    """Ridge regression from :func:`audio_inputs` to :func:`mouth_targets`."""

    weights: np.ndarray  # ((2 * context + 1) * n_mels + 1, len(channels))
    channels: tuple[str, ...]
    n_mels: int
    context: int
    fps: float
    recipe: dict[str, Any] = field(default_factory=dict)  # what it was trained on, and how

    def predict(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """Predicted standardised mouth channels for ``audio`` on the model's frame grid, shape (n_frames, channels)."""
        return audio_inputs(audio, self.fps, n_frames, self.n_mels, self.context) @ self.weights

    def save(self, path: Path) -> None:
        meta = {"channels": self.channels, "n_mels": self.n_mels, "context": self.context, "fps": self.fps}
        with open(path, "wb") as fh:
            np.savez(
                fh,
                weights=self.weights,
                meta=json.dumps(meta),
                recipe=json.dumps(self.recipe, sort_keys=True),
            )

    @classmethod
    def load(cls, path: Path) -> SyncModel:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                weights=data["weights"],
                channels=tuple(meta["channels"]),
                n_mels=int(meta["n_mels"]),
                context=int(meta["context"]),
                fps=float(meta["fps"]),
                recipe=json.loads(str(data["recipe"])),
            )


def fit(
    examples: Sequence[tuple[np.ndarray, Sequence[Sequence[float] | None]]],
    fps: float,
    n_mels: int = 40,
    context: int = 7,
    ridge: float = 1000.0,
    channels: Sequence[str] = MOUTH_CHANNELS,
    recipe: Mapping[str, Any] | None = None,
) -> SyncModel:
    """Fit on ``examples`` of (16 kHz audio of the clip, its per-frame blendshapes at ``fps``)."""
    xs, ys = [], []
    for audio, blendshapes in examples:
        y, valid = mouth_targets(blendshapes, channels)
        if valid.sum() < MIN_FRAMES:
            continue
        xs.append(audio_inputs(audio, fps, len(y), n_mels, context)[valid])
        ys.append(y[valid])
    if not xs:
        raise ValueError(f"no clip has {MIN_FRAMES} frames with a face and audio to learn from")
    x, y = np.concatenate(xs), np.concatenate(ys)
    weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    info = {"clips": len(xs), "frames": len(x), "ridge": ridge, **(recipe or {})}
    return SyncModel(weights, tuple(channels), n_mels, context, fps, info)


@dataclass(frozen=True)
class SyncScore:
    offset_frames: int  # shift of best agreement; + : audio lags video
    confidence: float  # correlation of predicted and observed mouth at that shift, -1..1
    prominence: float  # confidence minus the median correlation over all shifts
    frames: int  # frames with a face that were compared
    curve: np.ndarray  # correlation per shift from -search to +search, shape (2 * search + 1,)


def score(
    model: SyncModel, audio: np.ndarray, blendshapes: Sequence[Sequence[float] | None], search: int
) -> SyncScore | None:
    """Correlate predicted and observed mouth motion at shifts ``-search..search`` frames.

    ``None`` when fewer than :data:`MIN_FRAMES` frames have a face.
    """
    observed, valid = mouth_targets(blendshapes, model.channels)
    n = len(observed)
    if valid.sum() < MIN_FRAMES:
        return None
    predicted = model.predict(audio, n)
    curve = np.full(2 * search + 1, np.nan)
    for i, d in enumerate(range(-search, search + 1)):
        # Audio lagging by d frames: the prediction at t + d explains the mouth at t.
        t = np.arange(max(0, -d), min(n, n - d))
        t = t[valid[t]]
        if len(t) < MIN_FRAMES:
            continue
        p = predicted[t + d] - predicted[t + d].mean(axis=0)
        o = observed[t] - observed[t].mean(axis=0)
        curve[i] = float(np.sum(p * o) / (np.sqrt(np.sum(p * p) * np.sum(o * o)) + 1e-12))
    if np.isnan(curve).all():
        return None
    best = int(np.nanargmax(curve))
    return SyncScore(
        best - search, float(curve[best]), float(curve[best] - np.nanmedian(curve)), int(valid.sum()), curve
    )


class SyncExtractor(Extractor):
    name = "sync"
    version = "1"
    needs = ("face",)
    clip_fields: ClassVar[list[pa.Field]] = [
        column(
            "sync_offset_frames",
            pa.int32(),
            "shift of best audio-mouth agreement in frames; +: audio lags video",
        ),
        column(
            "sync_confidence",
            pa.float32(),
            "correlation of audio-predicted and observed mouth motion at that shift, -1..1",
        ),
        column(
            "sync_prominence", pa.float32(), "sync_confidence minus the median correlation over all shifts"
        ),
        column("sync_frames", pa.int32(), "frames with a face compared"),
    ]
    track_fields: ClassVar[list[pa.Field]] = [
        column("sync_curve", pa.list_(pa.float32()), "correlation per shift, from -search to +search frames"),
    ]

    def setup(self) -> None:
        cfg, models = self.config.sync, self.config.models
        given = Path(cfg.model).expanduser()
        path = (
            given if given.suffix == ".npz" else resolve(cfg.model, models.paths, cache_dir(models.cache_dir))
        )
        self._model = SyncModel.load(path)
        if abs(self._model.fps - self.config.face.fps) > 1e-6:
            raise ValueError(
                f"sync model {cfg.model!r} was trained at {self._model.fps:g} fps but [face] fps is "
                f"{self.config.face.fps:g}: train one at this rate with `curate sync train`"
            )

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        blendshapes = earlier.get("blendshapes")
        if not clip.has_audio or not blendshapes:
            return out
        result = score(
            self._model,
            read_audio(clip.path, clip.start_s, clip.end_s),
            blendshapes,
            self.config.sync.search_frames,
        )
        if result is not None:
            out.clip.update(
                sync_offset_frames=result.offset_frames,
                sync_confidence=result.confidence,
                sync_prominence=result.prominence,
                sync_frames=result.frames,
            )
            out.track["sync_curve"] = [None if np.isnan(v) else float(v) for v in result.curve]
        return out
