"""The stages of ``curate run``, each a callable over one video's work record.

    ProbeStage -> SegmentStage -> ExtractStage(face) -> ExtractStage(speech) -> CommitStage

A stage with a model loads it in ``setup()``; executors (sequential now, Ray too) run the same
stage objects. Failures become rows: a stage records ``errors[stage] = "reason: detail"`` and
later stages skip what cannot be done. The commit writes the clips and tracks parts first and
the videos part last, so a video counts as done only when all of its outputs are on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from curate.config import Config
from extractors.base import ClipRef, Extractor, Resources
from ingest.media import energy_envelope_db, frame_grid
from ingest.probe import ProbeFailure, content_id, probe, uri_id
from ingest.segment import SegmentParams, clip_id, plan_clips, shot_changes, silences
from ingest.sources import localize
from manifests.schema import error_text
from manifests.store import DatasetRoot


@dataclass
class VideoWork:
    """One input on its way through the stages.

    ``video``, ``clips`` and ``tracks`` hold rows of the tables of the same names. ``fatal``:
    the video cannot be processed further; ``skipped``: already committed by an earlier run or
    a duplicate of another input of this run.
    """

    uri: str
    run_id: str
    video: dict[str, Any] = field(default_factory=dict)
    clips: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    fatal: bool = False
    skipped: str | None = None  # "done" | "duplicate"

    @property
    def active(self) -> bool:
        return not self.fatal and self.skipped is None

    @property
    def video_id(self) -> str:
        return str(self.video.get("video_id", ""))


class Stage(Protocol):
    name: str

    @property
    def resources(self) -> Resources: ...

    def setup(self) -> None: ...

    def __call__(self, work: VideoWork) -> VideoWork: ...

    def close(self) -> None: ...


class CheapStage:
    """A stage with nothing to load."""

    name = "stage"

    @property
    def resources(self) -> Resources:
        return Resources()

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass


class ProbeStage(CheapStage):
    """Make the input local, identify it by content, skip it if done, read its container facts."""

    name = "probe"

    def __init__(self, root: DatasetRoot):
        self.root = root
        self._seen: set[str] = set()

    def __call__(self, work: VideoWork) -> VideoWork:
        work.video = {"uri": work.uri, "run_id": work.run_id, "errors": {}, "n_clips": 0}
        try:
            work.path = localize(work.uri, self.root.path / "_staging")
            if work.path.stat().st_size == 0:  # before hashing: empty files must not share one id
                raise ProbeFailure("empty_file", f"{work.uri} has zero bytes")
            work.video["video_id"] = content_id(work.path)
        except FileNotFoundError:
            return self._fail(work, ProbeFailure("missing_file", f"{work.uri} does not exist"))
        except ProbeFailure as exc:
            return self._fail(work, exc)
        except OSError as exc:
            return self._fail(work, ProbeFailure("unreachable", f"{work.uri}: {exc}"))
        if self._already(work):
            return work
        try:
            result = probe(work.path)
        except ProbeFailure as exc:
            work.fatal = True
            work.video["errors"][self.name] = str(exc)
            return work
        work.video.update(result.facts)
        work.video["errors"].update(result.errors)
        return work

    def _fail(self, work: VideoWork, exc: ProbeFailure) -> VideoWork:
        work.video["video_id"] = uri_id(work.uri)
        work.video["errors"][self.name] = str(exc)
        work.fatal = True
        self._already(work)
        return work

    def _already(self, work: VideoWork) -> bool:
        vid = work.video_id
        if vid in self._seen:
            work.skipped = "duplicate"
        elif self.root.has_part("videos", vid):
            work.skipped = "done"
        self._seen.add(vid)
        return work.skipped is not None


class SegmentStage(CheapStage):
    """Plan the clips of a video from its silences and shot changes."""

    name = "segment"

    def __init__(self, config: Config):
        seg = config.segment
        self.fps = config.face.fps
        self.detect_shots = seg.detect_shots
        self.params = SegmentParams(
            min_clip_s=seg.min_clip_s,
            max_clip_s=seg.max_clip_s,
            min_silence_s=seg.min_silence_s,
            silence_below_db=seg.silence_below_db,
            shot_threshold=seg.shot_threshold,
        )

    def __call__(self, work: VideoWork) -> VideoWork:
        if not work.active or work.path is None:
            return work
        duration = float(work.video["duration_s"])
        silent: list[tuple[float, float]] = []
        if work.video["has_audio"]:
            envelope = energy_envelope_db(work.path)
            work.video["audio_loudest_db"] = float(envelope.max()) if len(envelope) else None
            silent = silences(envelope, self.params)
        shots = shot_changes(work.path, duration, self.params) if self.detect_shots else []
        vid = work.video_id
        for index, plan in enumerate(plan_clips(duration, shots, silent, self.params)):
            cid = clip_id(vid, plan.start_s, plan.end_s)
            work.clips.append(
                {
                    "clip_id": cid,
                    "video_id": vid,
                    "clip_index": index,
                    "start_s": plan.start_s,
                    "end_s": plan.end_s,
                    "duration_s": plan.end_s - plan.start_s,
                    "cut_start": plan.cut_start,
                    "cut_end": plan.cut_end,
                    "fps": self.fps,
                    "errors": {},
                }
            )
            work.tracks.append(
                {
                    "clip_id": cid,
                    "video_id": vid,
                    "t_s": frame_grid(plan.start_s, plan.end_s, self.fps).tolist(),
                }
            )
        work.video["n_clips"] = len(work.clips)
        return work


class ExtractStage:
    """Run one extractor over every clip of a video; its failures go to ``errors[extractor]``."""

    def __init__(self, extractor: Extractor, strict: bool = False):
        self.extractor = extractor
        self.name = extractor.name
        self.strict = strict

    @property
    def resources(self) -> Resources:
        return self.extractor.resources

    def setup(self) -> None:
        self.extractor.setup()

    def close(self) -> None:
        self.extractor.close()

    def __call__(self, work: VideoWork) -> VideoWork:
        if not work.active or work.path is None:
            return work
        for clip, track in zip(work.clips, work.tracks, strict=True):
            ref = ClipRef(
                work.path, clip["video_id"], clip["clip_id"], clip["start_s"], clip["end_s"], clip["fps"],
                bool(work.video["has_audio"]),
            )  # fmt: skip
            try:
                result = self.extractor.extract(ref)
            except Exception as exc:
                if self.strict:
                    raise
                result = self.extractor.empty()
                result.failure = ("extractor_error", f"{type(exc).__name__}: {exc}")
            clip.update(result.clip)
            track.update(result.track)
            if result.failure:
                clip["errors"][self.name] = error_text(*result.failure)
        return work


class CommitStage(CheapStage):
    """Write the video's parts: clips and tracks first, the videos row (the done marker) last."""

    name = "commit"

    def __init__(self, root: DatasetRoot, schemas: dict[str, pa.Schema]):
        self.root = root
        self.schemas = schemas

    def __call__(self, work: VideoWork) -> VideoWork:
        if work.skipped:
            return work
        vid = work.video_id
        if work.clips:
            self.root.write_part("clips", vid, work.clips, self.schemas["clips"])
            self.root.write_part("tracks", vid, work.tracks, self.schemas["tracks"])
        self.root.write_part("videos", vid, [work.video], self.schemas["videos"])
        return work
