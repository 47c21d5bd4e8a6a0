"""One identity descriptor per face track: dlib's ResNet face descriptor (128-d) of the track's
sharpest, most frontal crops, averaged and made unit length.

Each crop is a square RGB uint8 image as :func:`extractors.base.square_crop` cuts it: the face
box (MediaPipe's landmarks' extent) grown by ``CROP_MARGIN`` of its size on each side, so the face
box is the centred square of side ``S / (1 + 2 x CROP_MARGIN)``. dlib's 5-point shape predictor
finds the eye corners and the base of the nose inside it, the face is cut out upright and scaled
to 150 x 150 as the descriptor was trained (``dlib.get_face_chip``, padding 0.25), and the
chips are scored: frontality from where the nose sits between the eyes, sharpness as the
variance of the chip's Laplacian. Distances between unit descriptors are Euclidean (0..2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extractors.base import CROP_MARGIN
from extractors.identity.model import DESCRIPTOR_FILE, LANDMARKS_FILE

#: Descriptor length of dlib_face_recognition_resnet_model_v1.
DIM = 128
#: Side of the aligned chip the descriptor reads (px) and the border around the face in it
#: (share of the face's size), both as dlib trained the network.
CHIP_PX = 150
CHIP_PADDING = 0.25
#: Crops whose face is smaller than this (px) are not used: too little detail for identity.
MIN_FACE_PX = 32
#: Frontality (1: nose midway between the eyes, 0: under one eye) below which a crop is not used,
#: and how far below the track's most frontal crop a crop may fall and still be picked.
MIN_FRONTAL = 0.3
FRONTAL_SLACK = 0.25
#: Crops embedded per track at most (the sharpest of the frontal ones). Each costs about 100 ms
#: on one core (dlib-bin has no BLAS); on the pool's training speakers 3 separate people as well
#: as 5 or 8 (bench/identity.py).
MAX_CROPS = 3
#: The rectangle handed to the shape predictor, as a share of MediaPipe's face box, and its
#: shift down (share of the box). The box runs from the hairline to the chin, larger than the
#: detector boxes the predictor was trained on, yet on the training speakers the whole box did as
#: well as 0.85-0.9 of it and far better than 0.7 (pair AUC 0.9996 against 0.90), and aligning
#: at all better than resizing the crop (0.978).
RECT_SCALE = 1.0
RECT_SHIFT = 0.0


@dataclass(frozen=True)
class Chip:
    """One crop made ready for the descriptor: the aligned (150, 150, 3) uint8 RGB face,
    frontality in 0..1 and sharpness (variance of the Laplacian of its grey levels, in squared
    grey levels)."""

    pixels: np.ndarray
    frontal: float
    sharpness: float


class FaceEmbedder:
    """dlib's shape predictor and face descriptor, loaded once from ``model_folder`` (the
    registry's ``face-embedding``: ``resolve(FACE_EMBEDDING, paths, cache)``)."""

    def __init__(self, model_folder: Path):
        import dlib  # loaded with the model, not at import

        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(Path(model_folder) / LANDMARKS_FILE))
        self._net = dlib.face_recognition_model_v1(str(Path(model_folder) / DESCRIPTOR_FILE))

    def chip(self, crop: np.ndarray) -> Chip | None:
        """The aligned face of one square crop ((S, S, 3) uint8 RGB; ``square_crop``'s sides may
        differ by a pixel), scored; ``None`` when the crop is not (nearly) square RGB or its face
        is smaller than ``MIN_FACE_PX``."""
        import cv2

        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            return None
        h, w = crop.shape[:2]
        if abs(h - w) > max(2, 0.02 * max(h, w)):  # square_crop's sides may differ by a pixel
            return None
        face = min(h, w) / (1 + 2 * CROP_MARGIN)
        if face < MIN_FACE_PX:
            return None
        half = face * RECT_SCALE / 2
        cx, cy = w / 2, h / 2 + RECT_SHIFT * face
        rect = self._dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))
        image = np.ascontiguousarray(crop)
        shape = self._landmarks(image, rect)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float64)
        pixels = self._dlib.get_face_chip(image, shape, size=CHIP_PX, padding=CHIP_PADDING)
        grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
        return Chip(pixels, frontality(points), sharpness)

    def pick(self, chips: Sequence[Chip]) -> list[Chip]:
        """Up to ``MAX_CROPS`` chips: the sharpest of those at least ``MIN_FRONTAL`` frontal and
        within ``FRONTAL_SLACK`` of the most frontal one."""
        usable = [c for c in chips if c.frontal >= MIN_FRONTAL]
        if not usable:
            return []
        best = max(c.frontal for c in usable)
        frontal = [c for c in usable if c.frontal >= best - FRONTAL_SLACK]
        return sorted(frontal, key=lambda c: -c.sharpness)[:MAX_CROPS]

    def describe(self, chips: Sequence[Chip]) -> np.ndarray:
        """The descriptors of aligned chips, shape (n, 128), float64 (dlib's scale: not unit)."""
        if not chips:
            return np.zeros((0, DIM))
        vectors = self._net.compute_face_descriptor([c.pixels for c in chips])
        return np.array([list(v) for v in vectors], dtype=np.float64).reshape(len(chips), DIM)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray | None:
        """One unit-length descriptor, shape (128,) float64, for a track's face ``crops`` (each
        (S, S, 3) uint8 RGB from ``square_crop``; any number, any S): the mean of the
        descriptors of the picked crops (:meth:`pick`), normalised. ``None`` when no crop is
        usable (too small, not square RGB, or every face turned away)."""
        chips = [c for c in (self.chip(crop) for crop in crops) if c is not None]
        picked = self.pick(chips)
        if not picked:
            return None
        return unit(self.describe(picked).mean(axis=0))


def frontality(points: np.ndarray) -> float:
    """How frontal a face is from dlib's 5 points ((5, 2) px: two corners of one eye, two of the
    other, the base of the nose): 1 when the nose projects midway between the eye centres onto
    the line through them, 0 when it projects onto an eye centre or beyond."""
    one, other, nose = points[0:2].mean(axis=0), points[2:4].mean(axis=0), points[4]
    axis = other - one
    length = float(axis @ axis)
    if length <= 0:
        return 0.0
    t = float((nose - one) @ axis) / length
    return max(0.0, 1.0 - 2.0 * abs(t - 0.5))


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 (a zero vector is returned as it is)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
