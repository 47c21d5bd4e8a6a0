"""What every extractor is: a model loaded once in ``setup()``, then one clip in, new namespaced
columns out.

An extractor that reads another's output names it in ``needs`` and gets the clip's columns so
far in ``earlier`` (the face track's blendshapes, for example); it must run after them, in the
same worker. An extractor never decides keep or reject. When it cannot produce its signal for a clip (no
face, no speech) it still returns what it measured and names the reason in ``failure``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from settings.config import Config


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
    """Base class: subclasses set the class attributes and implement :meth:`extract`."""

    name: ClassVar[str]
    version: ClassVar[str]
    clip_fields: ClassVar[list[pa.Field]]
    track_fields: ClassVar[list[pa.Field]]
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config):
        self.config = config

    @property
    def resources(self) -> Resources:
        return Resources()

    def models(self) -> list[str]:
        """Registry names of the models :meth:`setup` loads (what ``curate models fetch`` fetches)."""
        return []

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
