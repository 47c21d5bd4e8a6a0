"""Technical quality of each clip: picture, face, motion tracks and audio.

Picture terms are measured on ``[quality] frames`` evenly spaced face crops, each resized to
128x128 so sharpness does not depend on the face's size in pixels. Track terms come from the
face extractor's blendshapes and head pose. Audio terms are measured on the clip's 16 kHz
mono audio (clipping after resampling: a lower bound of the source's).

Picture and track terms need ``[face] min_score_frames`` frames with a face; with fewer they
are null and ``quality_skipped`` says why (the audio terms are still measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.audio_features import frame_level_db
from extractors.base import ClipRef, Extraction, Extractor
from extractors.face.crops import face_samples
from extractors.face.extractor import too_few_face_frames
from manifests.schema import BLENDSHAPE_NAMES, field
from settings.config import Rule, Section

#: A channel whose 99th percentile stays under this never moves (MediaPipe leaves cheekPuff,
#: noseSneer* and eyeWide* near zero).
DEAD_BELOW = 0.01
#: A channel at or above this in more than half of the frames is stuck at its maximum.
SATURATED_AT = 0.99
#: Samples at or above this magnitude count as clipped.
CLIP_LEVEL = 0.999


def picture(crops: Sequence[np.ndarray]) -> dict[str, float]:
    """Median sharpness (variance of the Laplacian), brightness (mean gray, 0..255) and contrast
    (gray standard deviation) of face crops normalised to 128x128."""
    import cv2  # loaded where crops are measured, not at import

    values = []
    for crop in crops:
        gray = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (128, 128), interpolation=cv2.INTER_AREA)
        values.append((cv2.Laplacian(gray, cv2.CV_64F).var(), gray.mean(), gray.std()))
    sharp, bright, contrast = np.median(np.asarray(values), axis=0)
    return {
        "quality_sharpness": float(sharp),
        "quality_brightness": float(bright),
        "quality_contrast": float(contrast),
    }


def tracks(
    blendshapes: Sequence[Sequence[float] | None], poses: Sequence[Sequence[float] | None]
) -> dict[str, Any]:
    """Head-pose range, blendshape jitter and dead or saturated channels over frames with a face."""
    shapes = np.asarray([b for b in blendshapes if b is not None], np.float64).reshape(
        -1, len(BLENDSHAPE_NAMES)
    )
    rotation = np.asarray([p[:3] for p in poses if p is not None], np.float64).reshape(-1, 3)
    out: dict[str, Any] = {}
    if len(rotation) >= 2:
        out["quality_pose_range_deg"] = float(
            np.max(np.percentile(rotation, 95, axis=0) - np.percentile(rotation, 5, axis=0))
        )
    if len(shapes) >= 3:
        # Mean absolute second difference: frame-to-frame noise a smooth motion does not have.
        out["quality_jitter"] = float(np.mean(np.abs(np.diff(shapes[:, 1:], n=2, axis=0))))
        out["quality_dead_channels"] = [
            n
            for n, p in zip(BLENDSHAPE_NAMES[1:], np.percentile(shapes[:, 1:], 99, axis=0), strict=True)
            if p < DEAD_BELOW
        ]
        out["quality_saturated_channels"] = [
            n
            for n, s in zip(BLENDSHAPE_NAMES[1:], np.mean(shapes[:, 1:] >= SATURATED_AT, axis=0), strict=True)
            if s > 0.5
        ]
    return out


def audio_terms(audio: np.ndarray, fps: float) -> dict[str, float]:
    """Loudness (mean level of the frames within 30 dB of the loudest, dBFS), share of clipped
    samples, and an SNR estimate: 95th minus 10th percentile of the frame level (dB)."""
    if not len(audio):
        return {}
    level = frame_level_db(audio, fps, max(int(len(audio) / 16_000 * fps), 1))
    active = level[level >= level.max() - 30.0]
    return {
        "quality_loudness_db": float(10 * np.log10(np.mean(10 ** (active / 10)))),
        "quality_clipping": float(np.mean(np.abs(audio) >= CLIP_LEVEL)),
        "quality_snr_db": float(np.percentile(level, 95) - np.percentile(level, 10)),
    }


class QualityConfig(Section):
    """Technical quality."""

    frames: int = Field(8, ge=1, le=256, description="face crops measured per clip")


class QualityExtractor(Extractor):
    name = "quality"
    version = "2"
    needs = ("face",)
    settings_class = QualityConfig
    default_rules: ClassVar[dict[str, Rule]] = {
        # Null when too few frames have a face ([face] min_score_frames): weak evidence, a person looks.
        "face_too_small": Rule(column="quality_face_px", min=64, band=16, missing="review"),
        "too_dark": Rule(column="quality_brightness", min=40, band=10, missing="review"),
        "noisy_audio": Rule(column="quality_snr_db", min=12, band=4),
        "clipped_audio": Rule(column="quality_clipping", max=0.01, band=0.005),
    }
    clip_fields: ClassVar[list[pa.Field]] = [
        field(
            "quality_sharpness",
            pa.float32(),
            "variance of the Laplacian of 128x128 face crops (median); higher is sharper",
        ),
        field("quality_brightness", pa.float32(), "mean gray level of the face, 0..255"),
        field("quality_contrast", pa.float32(), "gray standard deviation of the face, 0..255"),
        field("quality_face_px", pa.float32(), "median face box height in pixels"),
        field("quality_face_share", pa.float32(), "median share of the frame area in the face box, 0..1"),
        field(
            "quality_pose_range_deg",
            pa.float32(),
            "largest 5-95th percentile range of yaw, pitch or roll, degrees",
        ),
        field("quality_jitter", pa.float32(), "mean absolute second difference of the blendshapes per frame"),
        field(
            "quality_dead_channels",
            pa.list_(pa.string()),
            f"blendshapes whose 99th percentile is under {DEAD_BELOW}",
        ),
        field(
            "quality_saturated_channels",
            pa.list_(pa.string()),
            f"blendshapes at >= {SATURATED_AT} in most frames",
        ),
        field("quality_loudness_db", pa.float32(), "mean level of the active audio, dBFS"),
        field("quality_clipping", pa.float32(), f"share of audio samples at |x| >= {CLIP_LEVEL}"),
        field(
            "quality_snr_db",
            pa.float32(),
            "95th minus 10th percentile of the frame level, dB (speech over floor)",
        ),
        field(
            "quality_skipped",
            pa.string(),
            "why the picture and track terms are null, e.g. few_face_frames: ...; null: measured",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = []

    @property
    def settings(self) -> QualityConfig:
        return self.config.section(self.name, QualityConfig)

    def face_crops(self) -> int:
        return self.settings.frames

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        boxes = earlier.get("face_box") or []
        skipped = too_few_face_frames(self.config, boxes)
        out.clip["quality_skipped"] = skipped
        samples = [] if skipped else face_samples(clip, boxes, self.settings.frames)
        if samples:
            out.clip.update(picture([s.crop for s in samples]))
            heights = [s.box_px[3] - s.box_px[1] for s in samples]
            shares = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes if b is not None]
            out.clip.update(
                quality_face_px=float(np.median(heights)), quality_face_share=float(np.median(shares))
            )
        if not skipped:
            out.clip.update(tracks(earlier.get("blendshapes") or [], earlier.get("head_pose") or []))
        if clip.has_audio:
            out.clip.update(audio_terms(clip.audio(), clip.fps))
        return out
