"""Audio-visual sync: how well the clip's audio explains its mouth motion, at which shift, and how
sure that is for this clip.

No pretrained SyncNet exists offline, so the project learns its own audio -> mouth model across
clips (:class:`SyncModel`: a ridge regression from pretrained Whisper encoder states, or log-mel,
to the mouth blendshapes; ``curate sync train`` fits it on any dataset root). A clip is scored
like SyncNet: the predicted mouth motion is correlated with the observed one at every shift
within ``[sync] search_frames``; the best shift is the peak.

A raw correlation means different things for different faces (a still mouth, a short clip, a
mouth that moves all the time), so it is calibrated per clip against its own null: the same
mouth track scored, at every shift, against the predictions of many foreign recordings (the
model's ``bank``, from its training clips). ``sync_confidence`` is the z-score of the clip's
best correlation within that null (the best foreign shift's distribution), ``sync_p_value`` the
share of foreign recordings that do as well. The offset is reported only when that evidence is
significant (``[sync] significance_z``); otherwise it is unknown (null).

How much evidence a clip can hold grows with the speech in it: an in-sync clip's z-score is
about ``[sync] in_sync_z_slope`` x sqrt(seconds of speech), spread by ``in_sync_z_spread``
(fitted on the pool's training speakers, docs/sync.md), while foreign audio's stays near 0 at
any length. ``sync_speech_s`` counts the compared frames whose audio is active (within
:data:`ACTIVE_DB` of the clip's loudest frame), and ``sync_in_sync_p`` is the chance that an
in-sync clip with that much speech scores as low as this one: the rule ``out_of_sync`` rejects
only when it is under 1% (in sync is implausible), and ``sync_undecided`` sends to review a
clip whose z-score foreign audio could also reach ("too little speech to judge sync").

Offset convention: ``sync_offset_frames = +k`` means the audio lags the video by ``k`` frames
(the sound of a mouth movement arrives ``k / fps`` seconds after it); shifting the audio
``k`` frames earlier corrects it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.audio_features import frame_level_db
from extractors.base import ClipRef, Extraction, Extractor, trained_here
from extractors.face.extractor import FaceConfig, too_few_face_frames
from extractors.sync.features import WHISPER_TINY_EN, FeatureMaker
from manifests.schema import BLENDSHAPE_NAMES
from manifests.schema import field as column
from settings.config import ModelsConfig, Rule, Section
from settings.files import regular_file
from settings.models import cache_dir, resolve

#: The evidence model, fitted by ``curate sync eval`` (leave-one-group-out) on the pool's
#: training split (docs/sync.md).
IN_SYNC_Z_SLOPE = 2.09
IN_SYNC_Z_SPREAD = 1.85
#: Audio frames within this many dB of the clip's loudest count as speech for the evidence.
ACTIVE_DB = 25.0


def speech_frames(audio: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Frames whose audio level is within :data:`ACTIVE_DB` of the loudest one, shape (n_frames,)."""
    level = frame_level_db(audio, fps, n_frames)
    return level >= level.max() - ACTIVE_DB if len(level) else np.zeros(0, bool)


def in_sync_p(confidence: float, speech_s: float, slope: float, spread: float) -> float:
    """Chance that an in-sync clip with ``speech_s`` seconds of speech has a sync_confidence of
    ``confidence`` or lower: the normal lower tail about ``slope * sqrt(speech_s)``."""
    return 0.5 * (
        1.0 + math.erf((confidence - slope * math.sqrt(max(speech_s, 0.0))) / (spread * math.sqrt(2)))
    )


class SyncConfig(Section):
    """Audio-visual sync scored with a model learned across clips (``curate sync train``)."""

    model: str = Field(
        "sync-default", description="registry name of the sync model, or a .npz file from `curate sync train`"
    )
    search_frames: int = Field(15, ge=1, le=60, description="shifts tried either way, frames")
    significance_z: float = Field(
        1.8, ge=0, description="sync_confidence from which the offset is reported (below: unknown, null)"
    )
    in_sync_z_slope: float = Field(
        IN_SYNC_Z_SLOPE,
        gt=0,
        description="an in-sync clip's expected sync_confidence per sqrt(second of speech)",
    )
    in_sync_z_spread: float = Field(
        IN_SYNC_Z_SPREAD,
        gt=0,
        description="standard deviation of an in-sync clip's sync_confidence about that",
    )


SYNC_DEFAULT_SHA256 = "749ee8c3abb1d626d954a7c9e00bb9677922abc0f37a896527e112d03e2ecd82"
SYNC_DEFAULT_SIZE = 597_461
SYNC_DEFAULT = trained_here(
    "sync-default",
    "Whisper-encoder -> mouth ridge model and null bank for calibrated sync scores, trained by this "
    "project with `curate sync train` on the training speakers of the pool (recipe in docs/sync.md); "
    "needs whisper-tiny-en",
    "sync_default.npz",
    SYNC_DEFAULT_SHA256,
    SYNC_DEFAULT_SIZE,
)

#: Mouth blendshapes the model predicts from audio.
MOUTH_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft",
    "mouthSmileRight", "mouthRollLower", "mouthRollUpper", "mouthPressLeft", "mouthPressRight",
)  # fmt: skip

#: Fewest frames with a face for a clip to be scored (1 s at 30 fps).
MIN_FRAMES = 30
#: Foreign recordings kept in a model's null bank, and the frames kept of each.
BANK_SIZE = 64
BANK_FRAMES = 600
#: Default features of a new model: the measured best on unseen speakers (docs/sync.md).
DEFAULT_FEATURES: dict[str, Any] = {"kind": "whisper", "encoder": "whisper-tiny-en", "context": 1}
#: Feature settings by the names ``curate sync train --features`` takes.
FEATURE_CHOICES: dict[str, dict[str, Any]] = {
    "whisper-tiny-en": DEFAULT_FEATURES,
    "whisper-base": {"kind": "whisper", "encoder": "whisper-base", "context": 1},
    "log-mel": {"kind": "log-mel", "n_mels": 40, "context": 7},
}


def _smooth(x: np.ndarray) -> np.ndarray:
    """Three-frame moving average along axis 0 (edges repeated)."""
    padded = np.pad(x, ((1, 1), (0, 0)), mode="edge")
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0


def mouth_targets(
    blendshapes: Sequence[Sequence[float] | None], channels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip standardised, smoothed mouth channels, shape (n_frames, len(channels)), and the
    mask of frames with a face, shape (n_frames,)."""
    idx = [BLENDSHAPE_NAMES.index(c) for c in channels]
    rows = [
        np.asarray(b, np.float64)[idx] if b is not None else np.full(len(idx), np.nan) for b in blendshapes
    ]
    raw = np.asarray(rows).reshape(len(rows), len(idx))
    valid = ~np.isnan(raw).any(axis=1)
    if valid.sum() < 2:
        return np.zeros_like(raw), valid
    y = np.where(valid[:, None], raw, np.nanmean(raw, axis=0))
    y = (y - y[valid].mean(axis=0)) / (y[valid].std(axis=0) + 1e-3)
    return _smooth(y), valid


def correlation_curve(
    predicted: np.ndarray, observed: np.ndarray, valid: np.ndarray, search: int
) -> np.ndarray:
    """Correlation of predicted and observed mouth (all channels together) at shifts
    ``-search..search`` frames; NaN where fewer than :data:`MIN_FRAMES` frames overlap.

    ``predicted``: (n, C), or (K, n, C) for K predictions at once; returns (2 * search + 1,) or
    (K, 2 * search + 1). At shift ``d`` the prediction at ``t + d`` explains the mouth at ``t``
    (audio lagging by ``d`` frames).
    """
    many = predicted[None] if predicted.ndim == 2 else predicted
    n = observed.shape[0]
    curve = np.full((len(many), 2 * search + 1), np.nan)
    for i, d in enumerate(range(-search, search + 1)):
        t = np.arange(max(0, -d), min(n, n - d))
        t = t[valid[t]]
        if len(t) < MIN_FRAMES:
            continue
        p = many[:, t + d]
        p = p - p.mean(axis=1, keepdims=True)
        o = observed[t] - observed[t].mean(axis=0)
        num = np.einsum("ktc,tc->k", p, o)
        curve[:, i] = num / (np.sqrt(np.einsum("ktc,ktc->k", p, p) * np.sum(o * o)) + 1e-12)
    return curve[0] if predicted.ndim == 2 else curve


@dataclass(frozen=True)
class SyncModel:
    """Ridge regression from standardised audio features to :func:`mouth_targets`, with the null
    bank its scores are calibrated against."""

    weights: np.ndarray  # (dim + 1, len(channels)), the last row the bias
    mean: np.ndarray  # (dim,) feature standardisation
    scale: np.ndarray  # (dim,)
    channels: tuple[str, ...]
    features: dict[str, Any]  # FeatureMaker settings
    fps: float
    bank: np.ndarray  # (K, BANK_FRAMES, channels) predicted mouth of K training recordings, float16
    bank_frames: np.ndarray  # (K,) frames of each bank entry that are real
    recipe: dict[str, Any] = field(default_factory=dict)  # what it was trained on, and how

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Predicted standardised mouth channels from feature rows, shape (n_frames, channels)."""
        return ((inputs - self.mean) / self.scale) @ self.weights[:-1] + self.weights[-1]

    def null_predictions(self, n_frames: int) -> np.ndarray:
        """Every bank entry repeated or cut to ``n_frames``, shape (K, n_frames, channels)."""
        return np.stack(
            [
                np.resize(b[:k].astype(np.float64), (n_frames, b.shape[1]))
                for b, k in zip(self.bank, self.bank_frames, strict=True)
            ]
        )

    def save(self, path: Path) -> None:
        meta = {"channels": self.channels, "features": self.features, "fps": self.fps}
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh,
                weights=self.weights,
                mean=self.mean,
                scale=self.scale,
                bank=self.bank,
                bank_frames=self.bank_frames,
                meta=json.dumps(meta, sort_keys=True),
                recipe=json.dumps(self.recipe, sort_keys=True),
            )

    @classmethod
    def load(cls, path: Path) -> SyncModel:
        with np.load(regular_file(path, "sync model"), allow_pickle=False) as data:
            if "bank" not in data:
                raise ValueError(
                    f"{path} is a sync model of an older kind (no null bank): retrain it with `curate sync train`"
                )
            meta = json.loads(str(data["meta"]))
            return cls(
                weights=data["weights"],
                mean=data["mean"],
                scale=data["scale"],
                channels=tuple(meta["channels"]),
                features=meta["features"],
                fps=float(meta["fps"]),
                bank=data["bank"],
                bank_frames=data["bank_frames"],
                recipe=json.loads(str(data["recipe"])),
            )


def _ridge(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], ridge: float) -> tuple[np.ndarray, ...]:
    x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    xb = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    weights = np.linalg.solve(xb.T @ xb + ridge * np.eye(xb.shape[1]), xb.T @ y)
    return weights, mean, scale


def _aligned(
    inputs: np.ndarray, y: np.ndarray, valid: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input rows ``t + offset`` beside the mouth at ``t``, for the frames with a face."""
    n = len(y)
    t = np.arange(max(0, -offset), min(n, n - offset))
    t = t[valid[t]]
    return inputs[t + offset], y[t]


def fit(
    examples: Sequence[tuple[np.ndarray, Sequence[Sequence[float] | None]]],
    fps: float,
    features: Mapping[str, Any],
    ridge: float = 3000.0,
    self_training: int = 1,
    search: int = 15,
    channels: Sequence[str] = MOUTH_CHANNELS,
    recipe: Mapping[str, Any] | None = None,
) -> SyncModel:
    """Fit on ``examples`` of (feature rows of the clip's audio, its per-frame blendshapes at ``fps``).

    ``self_training`` rounds: each clip's offset is measured with the model so far and its frames
    realigned by it before refitting, so that recordings with an offset of their own do not blur
    what the model learns about timing.
    """
    clips = []
    for inputs, blendshapes in examples:
        y, valid = mouth_targets(blendshapes, channels)
        if valid.sum() >= MIN_FRAMES:
            clips.append((inputs, y, valid))
    if not clips:
        raise ValueError(f"no clip has {MIN_FRAMES} frames with a face and audio to learn from")
    offsets = [0] * len(clips)
    for _ in range(self_training + 1):
        pairs = [_aligned(x, y, v, o) for (x, y, v), o in zip(clips, offsets, strict=True)]
        weights, mean, scale = _ridge([p[0] for p in pairs], [p[1] for p in pairs], ridge)
        model = SyncModel(
            weights, mean, scale, tuple(channels), dict(features), fps, np.zeros((0, 0, 0)), np.zeros(0)
        )
        offsets = [
            int(np.nanargmax(correlation_curve(model.predict(x), y, v, search))) - search for x, y, v in clips
        ]
    chosen = np.linspace(0, len(clips) - 1, min(BANK_SIZE, len(clips))).round().astype(int)
    bank = np.zeros((len(chosen), BANK_FRAMES, len(channels)), np.float16)
    bank_frames = np.zeros(len(chosen), np.int32)
    for row, i in enumerate(chosen):
        predicted = model.predict(clips[i][0])[:BANK_FRAMES]
        bank[row, : len(predicted)] = predicted
        bank_frames[row] = len(predicted)
    info = {
        "clips": len(clips),
        "frames": int(sum(v.sum() for _, _, v in clips)),
        "ridge": ridge,
        "self_training": self_training,
        **(recipe or {}),
    }
    return replace(model, bank=bank, bank_frames=bank_frames, recipe=info)


@dataclass(frozen=True)
class SyncScore:
    offset_frames: int | None  # the peak's shift when significant, else None; + : audio lags video
    peak_frames: int  # shift of the best correlation, significant or not
    correlation: float  # the best correlation of predicted and observed mouth, -1..1
    confidence: float  # z-score of it against the clip's null (foreign audio at its best shift)
    p_value: float  # share of foreign recordings (and this one) whose best correlation is at least as high
    frames: int  # frames with a face that were compared
    valid: np.ndarray  # which frames were compared (had a face), shape (n_frames,)
    curve: np.ndarray  # correlation per shift from -search to +search, shape (2 * search + 1,)


def score(
    model: SyncModel,
    predicted: np.ndarray,
    blendshapes: Sequence[Sequence[float] | None],
    search: int,
    significance_z: float,
) -> SyncScore | None:
    """Score one clip: ``predicted`` is the mouth its audio predicts (``model.predict`` of the
    audio's feature rows, (n_frames, channels)), ``blendshapes`` the face track.

    ``None`` when fewer than :data:`MIN_FRAMES` frames have a face.
    """
    observed, valid = mouth_targets(blendshapes, model.channels)
    if valid.sum() < MIN_FRAMES:
        return None
    curve = correlation_curve(predicted[: len(observed)], observed, valid, search)
    if np.isnan(curve).all():
        return None
    null = np.nanmax(
        correlation_curve(model.null_predictions(len(observed)), observed, valid, search), axis=1
    )
    best = int(np.nanargmax(curve))
    z = float((curve[best] - null.mean()) / (null.std(ddof=1) + 1e-9))
    return SyncScore(
        offset_frames=best - search if z >= significance_z else None,
        peak_frames=best - search,
        correlation=float(curve[best]),
        confidence=z,
        p_value=float((1 + np.sum(null >= curve[best])) / (len(null) + 1)),
        frames=int(valid.sum()),
        valid=valid,
        curve=curve,
    )


#: Feature makers made in this process, by their settings: the face extractor (telling the
#: speaking face) and the sync signal share one encoder.
_FEATURE_MAKERS: dict[str, FeatureMaker] = {}


def feature_maker(features: Mapping[str, Any], models: ModelsConfig, threads: int = 1) -> FeatureMaker:
    """A feature maker for ``features`` settings, its Whisper encoder resolved through the
    registry; one per process for the same settings."""
    from extractors.registry import model_spec  # the registry imports every signal module

    encoder = features.get("encoder")
    folder = resolve(model_spec(encoder), models.paths, cache_dir(models.cache_dir)) if encoder else None
    key = json.dumps([dict(features), str(folder), threads], sort_keys=True, default=str)
    if key not in _FEATURE_MAKERS:
        _FEATURE_MAKERS[key] = FeatureMaker(dict(features), folder, threads)
    return _FEATURE_MAKERS[key]


class SyncExtractor(Extractor):
    name = "sync"
    version = "4"
    needs = ("face",)
    settings_class = SyncConfig
    model_specs = (SYNC_DEFAULT, WHISPER_TINY_EN)
    default_rules: ClassVar[dict[str, Rule]] = {
        # Reject only when in sync is implausible for the speech the clip holds (under 1% of
        # in-sync clips score this low), or on a shift beyond 13 frames; a z-score foreign audio
        # could reach goes to review (too little speech to judge sync); an offset too uncertain
        # to report (null) is left to those two (docs/sync.md).
        "out_of_sync": Rule(column="sync_in_sync_p", min=0.01, missing="review"),
        "sync_undecided": Rule(column="sync_confidence", min=1.8, beyond="review", missing="accept"),
        "sync_offset": Rule(column="sync_offset_frames", min=-8, max=8, band=5, missing="accept"),
    }
    clip_fields: ClassVar[list[pa.Field]] = [
        column(
            "sync_offset_frames",
            pa.int32(),
            "shift of best audio-mouth agreement in frames (+: audio lags video); null when not significant",
        ),
        column(
            "sync_confidence",
            pa.float32(),
            "calibrated sync evidence: z-score of the best correlation against foreign audio on this mouth",
        ),
        column("sync_p_value", pa.float32(), "share of foreign recordings that explain this mouth as well"),
        column(
            "sync_correlation", pa.float32(), "best correlation of audio-predicted and observed mouth, -1..1"
        ),
        column("sync_peak_frames", pa.int32(), "shift of the best correlation, significant or not"),
        column("sync_frames", pa.int32(), "frames with a face compared"),
        column("sync_speech_s", pa.float32(), "seconds of compared frames whose audio is active (speech)"),
        column(
            "sync_in_sync_p",
            pa.float32(),
            "chance an in-sync clip with this much speech scores sync_confidence this low, 0..1",
        ),
        column(
            "sync_skipped",
            pa.string(),
            "why the scores are null although there is audio and a face track, e.g. few_face_frames: ...",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = [
        column("sync_curve", pa.list_(pa.float32()), "correlation per shift, from -search to +search frames"),
    ]

    @property
    def settings(self) -> SyncConfig:
        return self.config.section(self.name, SyncConfig)

    def _model_file(self) -> Path:
        given = Path(self.settings.model).expanduser()
        return given if given.suffix == ".npz" else self.model_path(self.settings.model)

    def models(self) -> list[str]:
        """The sync model (unless a file) and the Whisper encoder its features need."""
        own = [] if self.settings.model.endswith(".npz") else [self.settings.model]
        encoder = SyncModel.load(self._model_file()).features.get("encoder")
        return own + ([encoder] if encoder else [])

    def setup(self) -> None:
        self._model = SyncModel.load(self._model_file())
        fps = self.config.section("face", FaceConfig).fps
        if abs(self._model.fps - fps) > 1e-6:
            raise ValueError(
                f"sync model {self.settings.model!r} was trained at {self._model.fps:g} fps but [face] fps is "
                f"{fps:g}: train one at this rate with `curate sync train`"
            )
        self._features = feature_maker(self._model.features, self.config.models)

    def _predicted(self, clip: ClipRef, n_frames: int) -> np.ndarray:
        """The mouth ``clip``'s audio predicts, (n_frames, channels): computed once per clip and
        kept with its media for the other tracks and signals that score against it."""
        key = f"sync-predicted:{self._model_file()}:{n_frames}"
        if key not in clip.media.derived:
            features = self._features(clip.audio(), clip.fps, n_frames)
            clip.media.derived[key] = self._model.predict(features)
        return clip.media.derived[key]

    def _score(self, clip: ClipRef, blendshapes: Sequence[Sequence[float] | None]) -> SyncScore | None:
        """One face track's mouth (``blendshapes`` per frame, null where that face is absent)
        scored against ``clip``'s audio; ``None`` when fewer than :data:`MIN_FRAMES` frames can
        be compared."""
        cfg = self.settings
        predicted = self._predicted(clip, len(blendshapes))
        return score(self._model, predicted, blendshapes, cfg.search_frames, cfg.significance_z)

    def mouth_z(self, clip: ClipRef, blendshapes: Sequence[Sequence[float] | None]) -> float | None:
        """The calibrated sync z-score (``sync_confidence``) of one face track's mouth against
        ``clip``'s audio (see :meth:`_score`)."""
        result = self._score(clip, blendshapes)
        return None if result is None else result.confidence

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        blendshapes = earlier.get("blendshapes")
        if not clip.has_audio or not blendshapes:
            return out
        out.clip["sync_skipped"] = too_few_face_frames(self.config, blendshapes)
        if out.clip["sync_skipped"]:
            return out
        audio = clip.audio()
        cfg = self.settings
        result = self._score(clip, blendshapes)
        if result is not None:
            speech_s = (
                float(np.sum(speech_frames(audio, clip.fps, len(blendshapes)) & result.valid)) / clip.fps
            )
            out.clip.update(
                sync_speech_s=speech_s,
                sync_in_sync_p=in_sync_p(
                    result.confidence, speech_s, cfg.in_sync_z_slope, cfg.in_sync_z_spread
                ),
                sync_offset_frames=result.offset_frames,
                sync_confidence=result.confidence,
                sync_p_value=result.p_value,
                sync_correlation=result.correlation,
                sync_peak_frames=result.peak_frames,
                sync_frames=result.frames,
            )
            out.track["sync_curve"] = [None if np.isnan(v) else float(v) for v in result.curve]
        else:
            out.clip["sync_skipped"] = (
                f"few_face_frames: fewer than {MIN_FRAMES} frames of face and audio overlap"
            )
        return out
