"""A few frames of a clip and the primary face in each, for extractors that look at pixels.

The face extractor cuts square crops around the boxes it finds while it decodes the frames
(:meth:`extractors.base.ClipMedia.offer`); these helpers pick evenly spaced ones of those. When
the face track came from elsewhere (no crops in this process), the clip is decoded here once,
converting only the frames picked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractors.base import ClipRef, square_crop
from ingest.media import iter_frames_at_rate


@dataclass(frozen=True)
class FaceSample:
    index: int  # frame of the clip's track
    crop: np.ndarray  # (S, S, 3) uint8 RGB, square around the face box with a margin
    box_px: tuple[int, int, int, int]  # x0, y0, x1, y1 of the face box in pixels


def evenly(indices: Sequence[int], count: int) -> list[int]:
    """Up to ``count`` evenly spaced items of ``indices``."""
    if len(indices) <= count:
        return list(indices)
    picks = np.linspace(0, len(indices) - 1, count).round().astype(int)
    return [indices[i] for i in picks]


def face_samples(clip: ClipRef, boxes: Sequence[Sequence[float] | None], count: int) -> list[FaceSample]:
    """The face of up to ``count`` evenly spaced frames that have one: from the crops the face
    extractor kept, else decoding the clip once."""
    kept = clip.media.crops
    if kept:
        return [FaceSample(i, *kept[i]) for i in evenly(sorted(kept), count)]
    wanted = evenly([i for i, b in enumerate(boxes) if b is not None], count)
    samples = []
    for frame in iter_frames_at_rate(clip.path, clip.start_s, clip.end_s, clip.fps, only=set(wanted)):
        box = boxes[frame.index]
        assert box is not None
        samples.append(FaceSample(frame.index, *square_crop(frame.image, box)))
    return samples
