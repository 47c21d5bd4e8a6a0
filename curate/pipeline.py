"""The stages of ``curate run`` and the work units they pass along.

    per video:  ProbeStage -> SegmentStage                 (VideoWork with its PlannedClips, cheap)
    per clip:   ExtractStage(<signal>) for each signal of  (ClipWork, models loaded in setup())
                [run] extractors, in order
                -> Pipeline.commit_clip                    (the clip's rows into the batch)
    per video:  Pipeline.commit_video                      (the videos row into the batch)
    end:        Pipeline.flush                             (commit what the process holds)

:func:`stages` builds that list from the configuration; :class:`Pipeline` runs it.

Executors (sequential and Ray) run the same stage objects through :class:`Pipeline`. Work is
spread per clip, so a worker holds one clip's arrays at a time however long the video is, plus
the finished rows of its batch. Failures become rows: a stage records ``errors[stage] =
"reason: detail"`` and later stages skip what cannot be done. A clip is done when its rows are
committed (:meth:`manifests.store.DatasetRoot.committed`), a video when its row and all its
planned clips are; a rerun skips both.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from extractors.base import ClipMedia, ClipRef, Extractor, Resources
from extractors.face.extractor import FaceConfig
from ingest.media import Damage, damaged_spans, energy_envelope_db, frame_grid, is_decode_error
from ingest.probe import ProbeFailure, content_id, probe, uri_id
from ingest.segment import SegmentParams, clip_id, plan_clips, shot_changes, silences
from ingest.sources import localize
from manifests.batch import BatchWriter
from manifests.schema import error_text
from manifests.store import Committed, DatasetRoot
from settings.config import Config
from settings.errors import one_line
from settings.files import not_regular


def failure_code(exc: BaseException, otherwise: str) -> str:
    """The reason code of an unexpected exception: ``decode_error`` for the decoder's, else ``otherwise``."""
    return "decode_error" if is_decode_error(exc) else otherwise


def log_exception(root: DatasetRoot, run_id: str, what: str) -> Path:
    """Append the exception being handled, with its traceback, to the run's log under the root
    (``logs/<run_id>.log``; on an object store, which cannot append, an object of its own in
    ``logs/<run_id>.log.d/``); returns the path written, relative to the root."""
    text = f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {what}\n{traceback.format_exc()}\n"
    return Path(root.append_log(f"logs/{run_id or 'run'}.log", text))


def staging_dir(root: DatasetRoot) -> Path:
    """Where remote inputs are copied before decoding: ``ROOT/_staging`` on a local root; for an
    object-store root a local folder per root under ``$CURATE_STAGING_DIR`` (default
    ``~/.cache/curate/staging``), on each node."""
    if not root.remote:
        return root.path / "_staging"
    base = Path(os.environ.get("CURATE_STAGING_DIR", "~/.cache/curate/staging")).expanduser()
    return base / hashlib.sha256(root.uri.encode()).hexdigest()[:16]


@dataclass
class ClipOutcome:
    """What the driver learns about a committed clip: its id, its failures and who did it."""

    clip_id: str
    errors: dict[str, str]
    node: str = "local"


@dataclass(frozen=True)
class PlannedClip:
    """A clip as segmentation planned it: its span in source seconds, why it was cut there, the
    track rate, and the failures known before extraction (``too_short``)."""

    clip_id: str
    video_id: str
    clip_index: int
    start_s: float
    end_s: float
    cut_start: str  # start | shot | silence | max_length
    cut_end: str  # end | shot | silence | max_length
    fps: float  # constant output rate of the clip's tracks
    damaged_s: float  # seconds of the clip inside damaged spans of the source
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def row(self) -> dict[str, Any]:
        """The clip's columns of the ``clips`` table as a new row (its own ``errors`` dict)."""
        return {
            "clip_id": self.clip_id,
            "video_id": self.video_id,
            "clip_index": self.clip_index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "duration_s": self.duration_s,
            "cut_start": self.cut_start,
            "cut_end": self.cut_end,
            "fps": self.fps,
            "damaged_s": self.damaged_s,
            "errors": dict(self.errors),
        }


@dataclass
class VideoWork:
    """One input on its way through the stages; small, so executors pass it around freely.

    ``video`` is the row of the ``videos`` table; ``clips`` the planned clips (no arrays).
    ``fatal``: the video cannot be processed further; ``skipped``: ``"done"`` (committed by an
    earlier run) or ``"duplicate"`` (same content as another input of this run).
    ``outcomes``: the clips committed now; ``clips_resumed``: clips an earlier run committed.
    """

    uri: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)  # the input's columns in a CSV list
    video: dict[str, Any] = field(default_factory=dict)
    clips: list[PlannedClip] = field(default_factory=list)
    path: Path | None = None
    fatal: bool = False
    skipped: str | None = None
    outcomes: list[ClipOutcome] = field(default_factory=list)
    clips_resumed: int = 0
    duplicate_of: str | None = None  # the input of this run with the same content

    @property
    def outcome(self) -> str:
        """processed | failed | done (committed by an earlier run) | duplicate."""
        return self.skipped or ("failed" if self.fatal else "processed")

    @property
    def active(self) -> bool:
        return not self.fatal and self.skipped is None

    @property
    def video_id(self) -> str:
        return str(self.video.get("video_id", ""))


@dataclass
class ClipWork:
    """One clip on its way through the extract stages.

    ``clip`` and ``track`` are its rows of the ``clips`` and ``tracks`` tables, filled in by
    each extractor (``track["t_s"]``: output frame times in source seconds, shape (frames,)).
    """

    clip: dict[str, Any]
    track: dict[str, Any]
    path: Path
    has_audio: bool
    run_id: str = ""
    name: str = ""  # file name of the input, for messages
    media: ClipMedia = field(default_factory=ClipMedia, repr=False)  # decoded once, for every extractor

    @property
    def ref(self) -> ClipRef:
        c = self.clip
        return ClipRef(
            self.path,
            c["video_id"],
            c["clip_id"],
            c["start_s"],
            c["end_s"],
            c["fps"],
            self.has_audio,
            self.media,
        )

    def merge(self, other: ClipWork, stages: Iterable[str]) -> None:
        """Take the columns and failures that ``stages`` wrote into ``other`` (another worker's copy)."""
        for key, value in other.clip.items():
            if key != "errors" and self.clip.get(key) is None:
                self.clip[key] = value
        for key, value in other.track.items():
            self.track.setdefault(key, value)
        for stage in stages:
            if stage in other.clip["errors"]:
                self.clip["errors"][stage] = other.clip["errors"][stage]


class VideoStage(Protocol):
    name: str

    def __call__(self, work: VideoWork) -> VideoWork: ...


class ProbeStage:
    """Make the input local, identify it by content, skip it if done, read its container facts."""

    name = "probe"

    def __init__(self, root: DatasetRoot, done: Committed):
        self.root = root
        self.done = done

    def __call__(self, work: VideoWork) -> VideoWork:
        work.video = {
            "uri": work.uri,
            "source_tags": work.tags,
            "run_id": work.run_id,
            "errors": {},
            "n_clips": 0,
        }
        try:
            work.path = localize(work.uri, staging_dir(self.root))
            kind = not_regular(work.path)
            if kind:  # before any open: reading a FIFO blocks, a device never ends
                raise ProbeFailure("not_regular_file", f"{work.uri} is {kind}, not a regular file")
            if work.path.stat().st_size == 0:  # before hashing: empty files must not share one id
                raise ProbeFailure("empty_file", f"{work.uri} has zero bytes")
            work.video["video_id"] = content_id(work.path)
        except ProbeFailure as exc:
            return self._fail(work, exc, uri_id(work.uri))
        except OSError as exc:
            if Path(work.uri).is_symlink():  # dangling, or a loop of links
                detail = f"{work.uri} is a link that leads to no file ({exc.strerror})"
                return self._fail(work, ProbeFailure("missing_file", detail), uri_id(work.uri))
            if isinstance(exc, FileNotFoundError):
                detail = f"{work.uri} does not exist"
                return self._fail(work, ProbeFailure("missing_file", detail), uri_id(work.uri))
            return self._fail(work, ProbeFailure("unreachable", f"{work.uri}: {exc}"), uri_id(work.uri))
        if work.video_id in self.done.done_videos:
            work.skipped = "done"
            return work
        try:
            result = probe(work.path)
        except ProbeFailure as exc:
            return self._fail(work, exc, work.video_id)
        work.video.update(result.facts)
        work.video["errors"].update(result.errors)
        return work

    def _fail(self, work: VideoWork, exc: ProbeFailure, video_id: str) -> VideoWork:
        work.video["video_id"] = video_id
        work.video["errors"][self.name] = str(exc)
        work.fatal = True
        if video_id in self.done.videos:
            work.skipped = "done"
        return work


class SegmentStage:
    """Plan the clips of a video from its silences and shot changes."""

    name = "segment"

    def __init__(self, config: Config):
        seg = config.segment
        self.fps = config.section("face", FaceConfig).fps
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
        damage: Damage = []
        if work.video["has_audio"]:
            envelope = energy_envelope_db(work.path, damage=damage)
            work.video["audio_loudest_db"] = float(envelope.max()) if len(envelope) else None
            silent = silences(envelope, self.params)
        shots = shot_changes(work.path, duration, self.params, damage) if self.detect_shots else []
        spans = damaged_spans(damage)
        work.video["damaged_spans"] = spans
        vid = work.video_id
        for index, plan in enumerate(plan_clips(duration, shots, silent, self.params)):
            length = plan.end_s - plan.start_s
            short = length < self.params.min_clip_s
            detail = f"{Path(work.uri).name}: {length:.2f} s, under [segment] min_clip_s {self.params.min_clip_s:g}"
            work.clips.append(
                PlannedClip(
                    clip_id(vid, plan.start_s, plan.end_s),
                    vid,
                    index,
                    plan.start_s,
                    plan.end_s,
                    plan.cut_start,
                    plan.cut_end,
                    self.fps,
                    damaged_seconds(spans, plan.start_s, plan.end_s),
                    {self.name: error_text("too_short", detail)} if short else {},
                )
            )
        work.video["n_clips"] = len(work.clips)
        return work


def damaged_seconds(spans: Iterable[Mapping[str, float]], start_s: float, end_s: float) -> float:
    """Seconds of ``start_s``-``end_s`` inside the damaged ``spans`` of a source (its
    ``damaged_spans``: dicts of ``start_s``, ``end_s``)."""
    return sum(max(0.0, min(end_s, d["end_s"]) - max(start_s, d["start_s"])) for d in spans)


class ExtractStage:
    """Run one extractor on a clip; its failures go to ``errors[extractor]``."""

    def __init__(self, extractor: Extractor, root: DatasetRoot, strict: bool = False):
        self.extractor = extractor
        self.root = root
        self.name = extractor.name
        self.strict = strict

    @property
    def resources(self) -> Resources:
        return self.extractor.resources

    def setup(self) -> None:
        self.extractor.setup()

    def close(self) -> None:
        self.extractor.close()

    def __call__(self, work: ClipWork) -> ClipWork:
        if SegmentStage.name in work.clip["errors"]:  # planned but not extractable (too short)
            return work
        try:
            result = self.extractor.extract(work.ref, {**work.clip, **work.track})
        except Exception as exc:
            if self.strict:
                raise
            result = self.extractor.empty()
            log = log_exception(self.root, work.run_id, f"{self.name} of clip {work.clip['clip_id']}")
            result.failure = (failure_code(exc, "extractor_error"), f"{one_line(exc)} (traceback in {log})")
        work.clip.update(result.clip)
        work.track.update(result.track)
        if result.failure:
            code, detail = result.failure
            work.clip["errors"][self.name] = error_text(code, f"{work.name}: {detail}")
        return work

    def fail(self, work: ClipWork, code: str, detail: str) -> ClipWork:
        """Record that this stage could not run on ``work`` (its columns stay null)."""
        empty = self.extractor.empty()
        work.clip.update(empty.clip)
        work.track.update(empty.track)
        work.clip["errors"][self.name] = error_text(code, f"{work.name}: {detail}")
        return work


def stages(
    config: Config,
    root: DatasetRoot,
    extractors: Sequence[Extractor],
    done: Committed,
    planner: VideoStage | None = None,
) -> list[VideoStage | ExtractStage]:
    """The stages of a run, in order: probe each video, plan its clips (``planner``; default
    :class:`SegmentStage`), then one extract stage per signal of ``extractors``
    (``extractors.registry.build(config)``) on each clip."""
    return [
        ProbeStage(root, done),
        planner or SegmentStage(config),
        *(ExtractStage(e, root, strict=config.run.strict) for e in extractors),
    ]


class Pipeline:
    """The stage objects of a run and the commits between them; shared by every executor.

    Picklable before :meth:`setup`: the Ray executor ships it to each worker, which sets up
    only the extract stages it runs. ``done`` is what the root held committed when the run began;
    each process commits its finished rows in batches (:class:`~manifests.batch.BatchWriter`) and
    must :meth:`flush` before it ends.
    """

    def __init__(
        self,
        root: DatasetRoot,
        config: Config,
        run_stages: Sequence[VideoStage | ExtractStage],
        schemas: dict[str, pa.Schema],
        done: Committed,
    ):
        self.root = root
        self.done = done
        self.batch = BatchWriter(root, schemas, config.run.batch_clips, config.run.batch_wait_s)
        self.clip_stages = [s for s in run_stages if isinstance(s, ExtractStage)]
        self.video_stages = [s for s in run_stages if not isinstance(s, ExtractStage)]
        self.strict = config.run.strict
        self.schemas = schemas

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.video_stages] + [s.name for s in self.clip_stages]

    def prepare(self, work: VideoWork) -> VideoWork:
        """Run the per-video stages (probe, segment) behind one boundary: whatever one of them
        raises becomes a failure of this video naming its file and stage (the traceback goes to
        the run's log), unless ``[run] strict``."""
        for stage in self.video_stages:
            try:
                work = stage(work)
            except Exception as exc:
                if self.strict:
                    raise
                return self._video_failed(work, stage.name, exc)
        return work

    def _video_failed(self, work: VideoWork, stage: str, exc: Exception) -> VideoWork:
        log = log_exception(self.root, work.run_id, f"{stage} of {work.uri}")
        work.video.setdefault("uri", work.uri)
        work.video.setdefault("run_id", work.run_id)
        work.video.setdefault("video_id", uri_id(work.uri))
        work.video.setdefault("n_clips", 0)
        work.video.setdefault("errors", {})[stage] = error_text(
            failure_code(exc, "stage_error"), f"{Path(work.uri).name}: {one_line(exc)} (traceback in {log})"
        )
        work.clips = []
        work.fatal = True
        return work

    def pending_clips(self, work: VideoWork) -> list[ClipWork]:
        """The clips of ``work`` not yet committed; counts the others in ``work.clips_resumed``."""
        if not work.active or work.path is None:
            return []
        todo = [c for c in work.clips if c.clip_id not in self.done.clips]
        work.clips_resumed = len(work.clips) - len(todo)
        return [
            ClipWork(
                c.row(),
                {
                    "clip_id": c.clip_id,
                    "video_id": c.video_id,
                    "t_s": frame_grid(c.start_s, c.end_s, c.fps).tolist(),
                },
                work.path,
                bool(work.video["has_audio"]),
                work.run_id,
                Path(work.uri).name,
            )
            for c in todo
        ]

    def commit_clip(self, work: ClipWork, node: str = "local") -> ClipOutcome:
        """Hand the clip's clips and tracks rows to this process's batch (committed together)."""
        self.batch.add_clip(work.clip, work.track)
        return ClipOutcome(work.clip["clip_id"], dict(work.clip["errors"]), node)

    def commit_video(self, work: VideoWork) -> VideoWork:
        """Hand the videos row to the batch once all of the video's clips have been handed over;
        a video whose row an earlier run committed (it stopped before all its clips) keeps it.
        The video is done when its row and as many clips as it planned are committed."""
        if not work.skipped and work.video_id not in self.done.videos:
            self.batch.add_video(work.video)
        return work

    def flush(self) -> str | None:
        """Commit the rows this process holds; the key of the batch, None when none were held."""
        return self.batch.flush()


class DuplicateInputs:
    """Marks inputs whose content another input of this run already has (driver side), naming it."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}  # video id -> the input that had it first

    def check(self, work: VideoWork) -> VideoWork:
        first = self._first.setdefault(work.video_id, work.uri)
        if first != work.uri:
            work.skipped = "duplicate"
            work.duplicate_of = first
        return work


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
