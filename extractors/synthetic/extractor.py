"""How likely a clip's face was produced by a model (lip-sync, one-shot warp, NeRF, diffusion).

Three cues, each measured so that a larger value looks more like real video, then compared with
the pool's real training recordings (:data:`REFERENCE`, fitted by ``python -m bench.synthetic``):

- ``mouth_flicker`` and ``eye_flicker``: how much the fine texture (the face crop, 128x128 gray,
  minus its Gaussian blur at sigma 1.5 px) of the mouth and of the eyes changes between two
  consecutive (different) frames, over that texture's own energy; ``[synthetic] pairs`` pairs of
  frames evenly spaced over the clip, both cut with the first frame's box, the median kept. A camera
  sees sensor noise and real skin move; rendered faces are smoother in time.
- ``upper_face_motion``: mean frame-to-frame change of the brow and gaze blendshapes over that of
  the mouth's. Many generators animate the mouth and leave the rest of the face still.

Each cue becomes a z-score against the real recordings' log values, signed so that positive means
"less like real video" (``synthetic_cue_z``); their mean, through a logistic calibrated on real
against generated training clips with equal priors, is ``synthetic_score`` (0..1). The cue with
the largest z is ``synthetic_strongest``: what a reviewer is told to look at.

How well this holds on a generator family it never saw is measured in docs/scores.md
("Synthetic faces"): weakly. The rule ``synthetic_face`` therefore sends clips to review and
never rejects, and is off by default.

A clip with fewer frames with a face than ``[face] min_score_frames``, or fewer than two pairs
of consecutive frames with a face, is not scored (null; ``synthetic_skipped`` says why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.base import ClipRef, Extraction, Extractor, square_crop
from extractors.face.crops import evenly
from extractors.face.extractor import too_few_face_frames
from ingest.media import iter_frames_at_rate
from manifests.schema import BLENDSHAPE_NAMES, field
from settings.config import Rule, Section

#: The cues, in the order of ``synthetic_cue_z``.
CUES: tuple[str, ...] = ("mouth_flicker", "eye_flicker", "upper_face_motion")

#: Regions of the 128x128 face crop (the box grown by the crop margin): rows, columns.
MOUTH = (slice(80, 108), slice(35, 93))
EYES = (slice(35, 60), slice(25, 103))
CROP_SIDE = 128
TEXTURE_SIGMA_PX = 1.5

UPPER_FACE = tuple(BLENDSHAPE_NAMES.index(n) for n in BLENDSHAPE_NAMES if n.startswith(("brow", "eyeLook")))
MOUTH_MOTION = tuple(
    BLENDSHAPE_NAMES.index(n)
    for n in (
        "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
        "mouthUpperUpLeft", "mouthUpperUpRight", "mouthSmileLeft", "mouthSmileRight",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Reference:
    """What real video looks like: per cue, mean and standard deviation of log(value) over the
    pool's real training recordings; and the logistic ``slope``, ``intercept`` that turns the mean
    z-score into a probability of "generated" (equal priors)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    slope: float
    intercept: float

    def z(self, cues: Sequence[float]) -> np.ndarray:
        """Signed z-score of each cue (positive: less like real video), shape (len(CUES),)."""
        logs = np.log(np.asarray(cues, np.float64) + 1e-6)
        return -(logs - np.asarray(self.mean)) / np.asarray(self.std)

    def probability(self, mean_z: float) -> float:
        return float(1.0 / (1.0 + np.exp(-(self.slope * mean_z + self.intercept))))


#: Fitted by ``python -m bench.synthetic`` on the pool's training split (docs/scores.md).
REFERENCE = Reference(mean=(-1.065, -1.493, 0.294), std=(0.931, 1.174, 0.666), slope=1.375, intercept=-0.51)


def texture(gray: np.ndarray) -> np.ndarray:
    """The fine texture of a gray image: the image minus its Gaussian blur."""
    import cv2  # loaded where crops are measured, not at import

    return gray - cv2.GaussianBlur(gray, (0, 0), TEXTURE_SIGMA_PX)


def flicker(first: np.ndarray, second: np.ndarray, box: Sequence[float]) -> tuple[float, float]:
    """Mouth and eye texture change between two consecutive RGB frames, both cut with ``box``
    (normalised x0, y0, x1, y1), each over the first frame's texture energy in that region."""
    import cv2

    def gray(frame: np.ndarray) -> np.ndarray:
        crop, _ = square_crop(frame, box)
        small = cv2.resize(
            cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA
        )
        return texture(small.astype(np.float64))

    a, b = gray(first), gray(second)
    mouth, eyes = (float(np.mean((b - a)[r] ** 2) / (np.mean(a[r] ** 2) + 1e-6)) for r in (MOUTH, EYES))
    return mouth, eyes


def upper_face_motion(blendshapes: Sequence[Sequence[float] | None]) -> float | None:
    """Mean absolute frame-to-frame change of the brow and gaze channels over that of the mouth
    channels, over the frames with a face."""
    rows = [b for b in blendshapes if b is not None]
    if len(rows) < 3:
        return None
    steps = np.abs(np.diff(np.asarray(rows, np.float64), axis=0))
    return float(steps[:, UPPER_FACE].mean() / (steps[:, MOUTH_MOTION].mean() + 1e-6))


class SyntheticConfig(Section):
    """The synthetic-face score."""

    pairs: int = Field(
        6, ge=2, le=64, description="pairs of consecutive frames whose texture change is measured"
    )


class SyntheticExtractor(Extractor):
    name = "synthetic"
    version = "1"
    needs = ("face",)
    settings_class = SyntheticConfig
    default_rules: ClassVar[dict[str, Rule]] = {
        # Review above the score 3.5% of the pool's real training recordings reach; never reject:
        # no score level is safe enough. Off by default: on speakers it never saw it sends 6.7% of
        # real clips to review (a real fixture among them) and catches a third of generated ones
        # (docs/scores.md); turn it on with [filter.rules.synthetic_face] enabled = true.
        "synthetic_face": Rule(
            column="synthetic_score", max=0.76, beyond="review", missing="accept", enabled=False
        ),
    }
    clip_fields: ClassVar[list[pa.Field]] = [
        field(
            "synthetic_score",
            pa.float32(),
            "probability the face was produced by a model (equal priors), 0..1",
        ),
        field(
            "synthetic_cue_z",
            pa.list_(pa.float32(), len(CUES)),
            "z-score of each cue against real video (positive: less like real): " + ", ".join(CUES),
        ),
        field(
            "synthetic_strongest", pa.string(), "the cue with the largest z-score (the evidence to look at)"
        ),
        field(
            "synthetic_skipped",
            pa.string(),
            "why the score is null, e.g. few_face_frames: ...; null: scored",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = []

    @property
    def settings(self) -> SyntheticConfig:
        return self.config.section(self.name, SyntheticConfig)

    def cues(
        self, clip: ClipRef, boxes: Sequence[Sequence[float] | None], blendshapes: Sequence[Any]
    ) -> list[float] | None:
        """The raw cue values of :data:`CUES`, or ``None`` with fewer than two usable pairs."""
        starts = {i: box for i, (box, after) in enumerate(pairwise(boxes)) if box and after}
        picks = evenly(sorted(starts), self.settings.pairs)
        if len(picks) < 2:
            return None
        # A source slower than the track rate repeats frames on the track grid: the pair is a
        # frame and the next different one, up to two frames on (none: a frozen face, no change).
        frames = {
            f.index: f.image
            for f in iter_frames_at_rate(
                clip.path, clip.start_s, clip.end_s, clip.fps, only={i + d for i in picks for d in (0, 1, 2)}
            )
        }
        pairs = []
        for i in picks:
            after = [frames[j] for j in (i + 1, i + 2) if j in frames]
            if i in frames and after:
                changed = [f for f in after if not np.array_equal(f, frames[i])]
                pairs.append(flicker(frames[i], (changed or after)[0], starts[i]))
        motion = upper_face_motion(blendshapes)
        if len(pairs) < 2 or motion is None:
            return None
        mouth, eyes = np.median(np.asarray(pairs), axis=0)
        return [float(mouth), float(eyes), motion]

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        boxes = earlier.get("face_box") or []
        skipped = too_few_face_frames(self.config, boxes)
        values = None if skipped else self.cues(clip, boxes, earlier.get("blendshapes") or [])
        if values is None:
            out.clip["synthetic_skipped"] = (
                skipped or "few_frame_pairs: fewer than 2 pairs of consecutive frames with a face"
            )
            return out
        z = REFERENCE.z(values)
        out.clip.update(
            synthetic_score=REFERENCE.probability(float(z.mean())),
            synthetic_cue_z=z.tolist(),
            synthetic_strongest=CUES[int(z.argmax())],
        )
        return out
