"""Where to look again for faces the landmarker misses on the whole frame: small faces.

The landmarker's detector sees the whole frame shrunk to a small square, so a face of a few
percent of a large or wide frame is lost. A crop of part of the frame, upscaled, shows it at a
size the detector finds. Two searches use such crops (``extractors/face/extractor.py``):

- ``[face] redetect``, for frames where no face is found: around the last face box, else over
  :func:`tiles` of half the frame's shorter side once every :data:`TILE_EVERY_FRAMES`;
- ``[face] extra_faces_every_s``, for frames where some faces but fewer than ``[face] max_faces``
  are found (:class:`ExtraFaceSearch`): a face on the screen beside a larger one (a wide shot
  next to a close-up) that the whole-frame detector never finds. Tiles are searched on a sparse
  schedule; a face found there that is none of the frame's faces is then looked for around its
  last box in every frame after with fewer than ``max_faces`` (until lost), so that it becomes
  a lasting track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from extractors.face.tracks import MIN_IOU, Box, iou

#: A frame region in normalised frame coordinates: x0, y0, width, height. Landmarks found in a
#: crop of that region map back as ``x0 + x * width``, ``y0 + y * height``.
Region = tuple[float, float, float, float]
WHOLE: Region = (0.0, 0.0, 1.0, 1.0)

#: A crop around a face's last box is this many times the box's larger side, upscaled to at
#: least ``CROP_MIN_PX`` so the face fills the detector's input.
CROP_SCALE = 3.0
CROP_MIN_PX = 256
#: Frames a face's last box is looked around before the face counts as lost.
LOST_AFTER_FRAMES = 30
#: ``[face] redetect``: while no face has been seen (or it is lost), the whole frame is searched
#: in tiles once every this many frames.
TILE_EVERY_FRAMES = 30


def crop_region(frame: np.ndarray, region: Region, min_px: int = CROP_MIN_PX) -> np.ndarray:
    """The pixels of ``region`` of an (H, W, 3) frame, edge pixels repeated beyond it, resized so
    its shorter side is at least ``min_px``."""
    h, w = frame.shape[:2]
    x0, y0 = round(region[0] * w), round(region[1] * h)
    x1, y1 = max(round((region[0] + region[2]) * w), x0 + 2), max(round((region[1] + region[3]) * h), y0 + 2)
    if min(x0, y0) >= 0 and x1 <= w and y1 <= h:
        crop = frame[y0:y1, x0:x1]  # a view: indexing copies a tile of a 1080p frame in 14 ms
    else:
        crop = frame[np.ix_(np.clip(np.arange(y0, y1), 0, h - 1), np.clip(np.arange(x0, x1), 0, w - 1))]
    short = min(crop.shape[:2])
    if short >= min_px:
        return crop
    import cv2  # loaded only when a small face is looked for

    scale = min_px / short
    size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
    return cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)


def around(box: Box, width: int, height: int, scale: float = CROP_SCALE) -> Region:
    """A square region (in pixels) ``scale`` times the larger side of a normalised ``box``,
    centred on it, as a normalised region."""
    side = max((box[2] - box[0]) * width, (box[3] - box[1]) * height) * scale
    cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
    return ((cx - side / 2) / width, (cy - side / 2) / height, side / width, side / height)


def tiles(width: int, height: int, share: float = 0.5) -> list[Region]:
    """Squares of ``share`` of the frame's shorter side (pixels), overlapping by half, covering
    a ``width`` x ``height`` frame."""
    side = min(width, height) * share
    step = side / 2

    def starts(extent: int) -> list[float]:
        n = max(int(np.ceil((extent - side) / step)), 0) + 1
        return [min(i * step, extent - side) for i in range(n)]

    return [
        (x / width, y / height, side / width, side / height) for y in starts(height) for x in starts(width)
    ]


def same_face(a: Box, b: Box) -> bool:
    """Whether boxes ``a`` and ``b`` (normalised x0, y0, x1, y1) are taken for one face: they
    overlap by :data:`~extractors.face.tracks.MIN_IOU` or one's centre lies in the other (a crop
    that cuts a face finds a smaller box inside it)."""

    def centre_in(p: Box, q: Box) -> bool:
        x, y = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
        return q[0] <= x <= q[2] and q[1] <= y <= q[3]

    return iou(a, b) >= MIN_IOU or centre_in(a, b) or centre_in(b, a)


@dataclass
class _Followed:
    box: Box  # last box, normalised
    frame: int  # grid frame it was last seen in


@dataclass
class ExtraFaceSearch:
    """One clip's search for faces beside those the whole-frame detector finds (``[face]
    extra_faces_every_s``). Per frame with fewer than ``[face] max_faces`` faces, in frame
    order: :meth:`follow` gives the crops around the faces it found before that the frame's
    faces are not; where the frame has a face, :meth:`tiles_due` says whether it is searched in
    tiles (:meth:`tiles`); :meth:`seen` records the faces found in those crops and tiles.

    ``every_frames``: grid frames between tile searches; ``share``: the tiles' side as a share of
    the frame's shorter side.
    """

    every_frames: int
    share: float
    lost_after: int = LOST_AFTER_FRAMES
    _followed: list[_Followed] = field(default_factory=list)
    _next_tiles: int = 0

    def follow(self, frame: int, faces: Sequence[Box], width: int, height: int) -> list[tuple[Region, Box]]:
        """The crops to look at in ``frame`` (of ``width`` x ``height`` pixels): around each face
        found before, seen within :data:`LOST_AFTER_FRAMES`, that none of the frame's ``faces``
        (boxes) is; with the box each is for. A followed face the frame's faces include is
        followed on from their box."""
        kept, crops = [], []
        for face in self._followed:
            if frame - face.frame > self.lost_after:
                continue
            match = next((b for b in faces if same_face(b, face.box)), None)
            if match is not None:
                face = _Followed(match, frame)
            else:
                crops.append((around(face.box, width, height), face.box))
            kept.append(face)
        self._followed = kept
        return crops

    def tiles_due(self, frame: int) -> bool:
        """Whether ``frame`` is searched in tiles (the first frame asked, then every
        ``every_frames``); the next search is counted from it."""
        if frame < self._next_tiles:
            return False
        self._next_tiles = frame + self.every_frames
        return True

    def tiles(self, width: int, height: int) -> list[Region]:
        """The tiles of a ``width`` x ``height`` frame; none when one tile covers it (the whole
        frame, which the landmarker has seen)."""
        found = tiles(width, height, self.share)
        return [] if len(found) <= 1 else found

    def seen(self, frame: int, boxes: Sequence[Box]) -> None:
        """Faces found in ``frame`` by this search (their ``boxes``): followed from there."""
        for box in boxes:
            known = next((f for f in self._followed if same_face(f.box, box)), None)
            if known is not None:
                known.box, known.frame = box, frame
            else:
                self._followed.append(_Followed(box, frame))
