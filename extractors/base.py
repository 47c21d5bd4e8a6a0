"""What every extractor is: a model loaded once in ``setup()``, then one clip in, new namespaced
columns out.

An extractor that reads another's output names it in ``needs`` and gets the clip's columns so
far in ``earlier`` (the face track's blendshapes, for example); it must run after them, in the
same worker. An extractor never decides keep or reject. When it cannot produce its signal for a clip (no
face, no speech) it still returns what it measured and names the reason in ``failure``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ingest.media import read_audio
from settings.config import Config, Rule, Section
from settings.models import ModelFile, ModelSpec, cache_dir, resolve


class CropKeeper:
    """Square face crops of evenly spaced frames of one face track: every frame at first, every
    other one each time more than ``2 x keep`` are held, so memory is bounded by ``2 x keep``
    crops whatever the clip's length."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.crops: dict[int, tuple[np.ndarray, tuple[int, int, int, int]]] = {}  # frame -> crop, box in px
        self._positions: dict[int, int] = {}  # frame -> its position among the frames offered
        self._offered = 0
        self._stride = 1

    def offer(self, index: int, frame: np.ndarray, box: Sequence[float]) -> None:
        """Keep the crop of ``box`` (normalised x0, y0, x1, y1) in ``frame`` ((H, W, 3) uint8 RGB),
        track frame ``index``, if it falls on the current stride."""
        position, self._offered = self._offered, self._offered + 1
        if not self.keep or position % self._stride:
            return
        self.crops[index] = square_crop(frame, box)
        self._positions[index] = position
        if len(self.crops) > 2 * self.keep:
            self._stride *= 2
            for i in [i for i, p in self._positions.items() if p % self._stride]:
                del self.crops[i], self._positions[i]


class ClipMedia:
    """A clip's decoded media, shared by the extractors that run on it in one process, so that
    each is decoded once: the 16 kHz audio (kept after its first read), square face crops that
    the face extractor cuts while it decodes the frames (for emotion and quality), and values
    derived from them that several signals use (``derived``: the mouth the audio predicts).

    Crops are kept per face track (:class:`CropKeeper`) until the face extractor has chosen the
    clip's subject (:meth:`choose`); ``crops`` are then the subject's. Nothing of it travels to
    another process.
    """

    def __init__(self) -> None:
        self._audio: np.ndarray | None = None
        self.keep = 0  # crops wanted per track; 0: the face extractor cuts none
        self._tracks: dict[int, CropKeeper] = {}
        self.crops: dict[int, tuple[np.ndarray, tuple[int, int, int, int]]] = {}  # the subject's, by frame
        self.derived: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return ClipMedia().__dict__

    def audio(self, clip: ClipRef) -> np.ndarray:
        """The clip's mono float32 samples at 16 kHz, shape (n,): decoded at the first call."""
        if self._audio is None:
            self._audio = read_audio(clip.path, clip.start_s, clip.end_s)
        return self._audio

    def offer(self, index: int, frame: np.ndarray, box: Sequence[float], track: int = 0) -> None:
        """Offer the face of face track ``track`` in track frame ``index`` (``frame``: (H, W, 3)
        uint8 RGB, ``box``: normalised x0, y0, x1, y1) to that track's crops."""
        if self.keep:
            self._tracks.setdefault(track, CropKeeper(self.keep)).offer(index, frame, box)

    def choose(self, track_ids: Sequence[int | None]) -> None:
        """Keep the crops of the subject: of each frame ``i``, the crop of track ``track_ids[i]``."""
        self.crops = {
            i: crop
            for track, keeper in self._tracks.items()
            for i, crop in keeper.crops.items()
            if i < len(track_ids) and track_ids[i] == track
        }
        self._tracks = {}


#: Margin of a face crop around the face box, a share of the box's size on each side.
CROP_MARGIN = 0.1


def square_crop(
    frame: np.ndarray, box: Sequence[float], margin: float = CROP_MARGIN
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Square crop around a normalised box grown by ``margin`` of its size (edge pixels repeated
    beyond the frame), and the box in pixels."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (round(v) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
    side = max(x1 - x0, y1 - y0, 2) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, right = int(cx - side / 2), int(cx + side / 2)
    top, bottom = int(cy - side / 2), int(cy + side / 2)
    if left >= 0 and top >= 0 and right <= w and bottom <= h:  # inside the frame: a plain copy
        return frame[top:bottom, left:right].copy(), (x0, y0, x1, y1)
    xs = np.clip(np.arange(left, right), 0, w - 1)
    ys = np.clip(np.arange(top, bottom), 0, h - 1)
    return frame[np.ix_(ys, xs)], (x0, y0, x1, y1)


#: Where the models this project trained itself are shipped.
WEIGHTS = Path(__file__).resolve().parent / "weights"


def trained_here(
    name: str, description: str, file: str, sha256: str, size: int, licence: str = "Apache-2.0"
) -> ModelSpec:
    """The registry entry of a one-file model this project trained and ships in :data:`WEIGHTS`;
    ``licence``: the weights' terms (those of the data they were trained on, where these bind)."""
    return ModelSpec(
        name=name,
        description=description,
        licence=licence,
        files=(ModelFile(file, sha256, size),),
        packaged=WEIGHTS,
    )


@dataclass(frozen=True)
class Resources:
    """What one instance needs: CPU cores, and GPUs where the stage can use one."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class ClipRef:
    """Where a clip's media are: the local file and the clip's span in source seconds."""

    path: Path
    video_id: str
    clip_id: str
    start_s: float
    end_s: float
    fps: float  # constant output rate of per-frame tracks
    has_audio: bool
    media: ClipMedia = field(default_factory=ClipMedia, compare=False, repr=False)

    def audio(self) -> np.ndarray:
        """The clip's 16 kHz mono audio, shape (n,), decoded once for all extractors."""
        return self.media.audio(self)


@dataclass
class Extraction:
    """An extractor's output for one clip.

    ``clip``: scalar columns for the ``clips`` table; ``track``: array columns for the ``tracks``
    table; ``failure``: (reason code, detail) when the signal could not be produced.
    """

    clip: dict[str, Any] = field(default_factory=dict)
    track: dict[str, Any] = field(default_factory=dict)
    failure: tuple[str, str] | None = None


class Extractor(ABC):
    """A signal, declared in one place: subclasses set the class attributes and implement
    :meth:`extract`; ``extractors/registry.py`` composes the configuration, the schema, the
    default rules and the model registry from what they declare.

    - ``name``: the signal's name (``[run] extractors``, the ``errors`` key, its columns' prefix);
    - ``clip_fields`` / ``track_fields``: its columns (``manifests.schema.field``);
    - ``settings_class``: its settings section ``[<name>]`` (a :class:`~settings.config.Section`
      with defaults and descriptions), read as ``self.settings``; ``None``: no settings;
    - ``default_rules``: rules on its columns in ``[filter.rules]`` (name, the reason code -> rule);
    - ``model_specs``: the registry entries of the models it may load; :meth:`models` says which
      it loads under a configuration;
    - ``needs``: signals whose columns it reads; :meth:`face_crops`: the face crops it looks at;
      :attr:`resources`: what one instance needs.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    clip_fields: ClassVar[list[pa.Field]]
    track_fields: ClassVar[list[pa.Field]]
    needs: ClassVar[tuple[str, ...]] = ()
    settings_class: ClassVar[type[Section] | None] = None
    default_rules: ClassVar[dict[str, Rule]] = {}
    model_specs: ClassVar[tuple[ModelSpec, ...]] = ()

    def __init__(self, config: Config):
        self.config = config
        #: Face crops per clip the run's extractors look at, kept by the face extractor while it
        #: decodes (set by ``extractors.registry.build``; 0: none, they decode again if they need).
        self.crops_wanted = 0

    @property
    def settings(self) -> Any:
        """This signal's section of the configuration (a ``settings_class``); subclasses narrow
        the type."""
        if self.settings_class is None:
            raise AttributeError(f"{self.name} has no settings section")
        return self.config.section(self.name, self.settings_class)

    @property
    def resources(self) -> Resources:
        return Resources()

    def models(self) -> list[str]:
        """Registry names of the models :meth:`setup` loads (what ``curate models fetch`` fetches)."""
        return []

    def face_crops(self) -> int:
        """Face crops per clip this signal looks at (``extractors.face.crops.face_samples``)."""
        return 0

    def model_path(self, name: str) -> Path:
        """The verified local file or folder of registry model ``name`` (``[models]`` settings)."""
        from extractors.registry import model_spec  # the registry imports every signal module

        return resolve(model_spec(name), self.config.models.paths, cache_dir(self.config.models.cache_dir))

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models; called once per worker before the first clip."""

    @abstractmethod
    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        """Measure one clip; ``earlier``: the columns the extractors before this one produced for it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`setup` loaded."""

    def empty(self) -> Extraction:
        """All of this extractor's columns as nulls (for clips it could not run on)."""
        return Extraction({f.name: None for f in self.clip_fields}, {f.name: None for f in self.track_fields})
