"""Faces followed across a clip's frames: every face the landmarker finds in a frame joins a track.

A face joins the track whose last box it overlaps most (intersection over union at least
:data:`MIN_IOU`); a face that overlaps none may re-join a track lost for at most
:data:`REJOIN_FRAMES` frames when its centre is within one box width of where that track was
last seen and its size is alike (re-identification after a gap: a turned head, a hand in front
of the face); otherwise it starts a new track. Ids count from 0 in the order tracks start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: A face's box in normalised frame coordinates: x0, y0, x1, y1.
Box = Sequence[float]

#: Least overlap (intersection over union) of a face with a track's last box to continue it.
MIN_IOU = 0.3
#: Frames a track may go unseen and still be re-joined by a face near where it was (2 s at 30 fps).
REJOIN_FRAMES = 60
#: Re-joining: the face's centre within this many box widths of the track's last centre, and
#: its box area within this factor of the track's last one.
REJOIN_DISTANCE = 1.0
REJOIN_AREA_RATIO = 2.0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def area(box: Box) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _near(box: Box, last: Box) -> bool:
    """Whether ``box`` may be the face last seen at ``last`` after a gap."""
    width = max(last[2] - last[0], 1e-6)
    dx = (box[0] + box[2] - last[0] - last[2]) / 2
    dy = (box[1] + box[3] - last[1] - last[3]) / 2
    ratio = area(box) / max(area(last), 1e-12)
    return bool(
        np.hypot(dx, dy) <= REJOIN_DISTANCE * width and 1 / REJOIN_AREA_RATIO <= ratio <= REJOIN_AREA_RATIO
    )


@dataclass
class _Open:
    last_box: Box
    last_frame: int


@dataclass
class FaceTracker:
    """Assigns the faces of each frame, in frame order, to tracks (see the module's docstring)."""

    _tracks: list[_Open] = field(default_factory=list)

    def update(self, frame: int, boxes: Sequence[Box]) -> list[int]:
        """Track ids of the faces found in ``frame`` (their ``boxes``), in the order given; no
        two faces of a frame share a track."""
        ids: list[int | None] = [None] * len(boxes)
        live = [t for t, track in enumerate(self._tracks) if frame - track.last_frame <= REJOIN_FRAMES]
        pairs = sorted(
            ((iou(box, self._tracks[t].last_box), i, t) for i, box in enumerate(boxes) for t in live),
            reverse=True,
        )
        taken: set[int] = set()
        for overlap, i, t in pairs:  # greedy: the best overlaps first
            if overlap < MIN_IOU:
                break
            if ids[i] is None and t not in taken:
                ids[i] = t
                taken.add(t)
        out: list[int] = []
        for i, box in enumerate(boxes):
            track = ids[i]
            if track is None:
                gone = [t for t in live if t not in taken and _near(box, self._tracks[t].last_box)]
                track = max(gone, key=lambda t: self._tracks[t].last_frame) if gone else len(self._tracks)
                if track == len(self._tracks):
                    self._tracks.append(_Open(box, frame))
                taken.add(track)
            self._tracks[track] = _Open(box, frame)
            out.append(track)
        return out

    @property
    def count(self) -> int:
        """Tracks started so far."""
        return len(self._tracks)
