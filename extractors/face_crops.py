"""A few frames of a clip and the primary face in each, for extractors that look at pixels.

The face extractor's track gives the box per frame; these helpers pick evenly spaced frames
that have a face, decode the clip once converting only those, and cut square crops around
the boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractors.base import ClipRef
from ingest.media import iter_frames_at_rate


@dataclass(frozen=True)
class FaceSample:
    index: int  # frame of the clip's track
    frame: np.ndarray  # (H, W, 3) uint8 RGB, the whole frame
    crop: np.ndarray  # (S, S, 3) uint8 RGB, square around the face box with a margin
    box_px: tuple[int, int, int, int]  # x0, y0, x1, y1 of the face box in pixels


def sample_indices(boxes: Sequence[Sequence[float] | None], count: int) -> list[int]:
    """Up to ``count`` evenly spaced track frames that have a face box."""
    with_face = [i for i, b in enumerate(boxes) if b is not None]
    if len(with_face) <= count:
        return with_face
    picks = np.linspace(0, len(with_face) - 1, count).round().astype(int)
    return [with_face[i] for i in picks]


def square_crop(
    frame: np.ndarray, box: Sequence[float], margin: float
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Square crop around a normalised box grown by ``margin`` of its size (edge pixels repeated
    beyond the frame), and the box in pixels."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (round(v) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
    side = max(x1 - x0, y1 - y0, 2) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    xs = np.clip(np.arange(int(cx - side / 2), int(cx + side / 2)), 0, w - 1)
    ys = np.clip(np.arange(int(cy - side / 2), int(cy + side / 2)), 0, h - 1)
    return frame[np.ix_(ys, xs)], (x0, y0, x1, y1)


def face_samples(
    clip: ClipRef, boxes: Sequence[Sequence[float] | None], count: int, margin: float = 0.1
) -> list[FaceSample]:
    """Decode the clip once and cut the face from up to ``count`` frames that have one."""
    wanted = sample_indices(boxes, count)
    samples = []
    for frame in iter_frames_at_rate(clip.path, clip.start_s, clip.end_s, clip.fps, only=set(wanted)):
        box = boxes[frame.index]
        assert box is not None
        crop, box_px = square_crop(frame.image, box, margin)
        samples.append(FaceSample(frame.index, frame.image, crop, box_px))
    return samples
