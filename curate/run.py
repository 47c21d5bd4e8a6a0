"""``curate run``: ingest, segment and extract a set of videos into a dataset root."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from curate.executors import Executor, SequentialExecutor
from curate.filter import FilterSummary, apply_filters, check_rules
from curate.pipeline import ClipOutcome, Pipeline, VideoWork, stages
from curate.ray_executor import RayExecutor, ray_map
from curate.speaker_cuts import cut_speakers, cutting, pending_cuts
from extractors.emotion.extractor import EmotionConfig
from extractors.emotion.speaker import SpeakerLabelling, label_root
from extractors.identity.assign import IdentityAssignment, assign_root
from extractors.registry import build, dataset_schemas, in_effect
from ingest.probe import content_id, uri_id
from ingest.sources import expand_sources, is_uri, unreadable
from manifests.compact import COMPACTED_GRACE_S
from manifests.lock import hold
from manifests.schema import error_code
from manifests.store import DatasetRoot
from manifests.views import connect
from settings.config import Config
from settings.errors import NothingToWorkOn

if TYPE_CHECKING:
    from export.shards import MapFn


class NothingToRead(NothingToWorkOn, RuntimeError):
    """The sources name no video input at all."""


@dataclass
class RunSummary:
    """What one run did. Seconds of video per wall second counts the videos it processed."""

    run_id: str
    root: str
    executor: str = "sequential"
    inputs: int = 0
    videos_processed: int = 0
    videos_failed: int = 0
    videos_skipped_done: int = 0
    videos_duplicate: int = 0
    clips: int = 0
    clips_resumed: int = 0
    clips_with_failures: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # reason code -> videos and clips with it
    clips_by_node: dict[str, int] = field(default_factory=dict)  # worker node -> clips it committed
    worker_peak_rss_mb: float = 0.0  # highest peak resident memory of one worker process
    startup_seconds: float = 0.0  # of wall_seconds: starting or joining the cluster, loading the models
    shutdown_seconds: float = 0.0  # of wall_seconds: last commits and stopping, after the last video
    worker_busy_share: float | None = None  # of the worker time in between, the share spent in jobs (Ray)
    clips_lost: int = 0  # finished, but their worker died before committing them ...
    videos_lost: int = 0  # ... and video rows likewise ...
    clips_redone: int = 0  # ... all done again at the end of the run
    speaker_parts: int = 0  # clips cut out of clips whose speaker changes, at the end of the run
    filter: FilterSummary | None = None  # the decision set appended at the end of the run
    emotion_speakers: SpeakerLabelling | None = None  # speaker-relative emotion labels, at the end
    identities: IdentityAssignment | None = None  # the clips filed among the root's identities, at the end

    @property
    def nothing_read(self) -> bool:
        """True when no input was processed now or before: every one failed."""
        return self.videos_processed + self.videos_skipped_done == 0

    @property
    def speed(self) -> float:
        """Seconds of video processed per wall-clock second."""
        return self.video_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def add(self, work: VideoWork) -> None:
        if work.skipped == "done":
            self.videos_skipped_done += 1
            return
        if work.skipped == "duplicate":
            self.videos_duplicate += 1
            return
        reasons: Counter[str] = Counter(error_code(m) for m in work.video.get("errors", {}).values())
        if work.fatal:
            self.videos_failed += 1
        else:
            self.videos_processed += 1
            self.video_seconds += _seconds_processed(work)
        self.clips_resumed += work.clips_resumed
        self.count_clips(work.outcomes, reasons)

    def add_parts(self, work: VideoWork) -> None:
        """Count the parts of cut clips a cut round committed for one video."""
        self.speaker_parts += len(work.outcomes)
        self.count_clips(work.outcomes, Counter())

    def count_clips(self, outcomes: list[ClipOutcome], reasons: Counter[str]) -> None:
        """Count committed clips, adding their failures to ``reasons`` (the video's own) and
        these to the run's."""
        self.clips += len(outcomes)
        for clip in outcomes:
            if clip.errors:
                self.clips_with_failures += 1
            reasons.update(error_code(m) for m in clip.errors.values())
            self.clips_by_node[clip.node] = self.clips_by_node.get(clip.node, 0) + 1
        for reason, n in reasons.items():
            self.failures[reason] = self.failures.get(reason, 0) + n

    def to_text(self) -> str:
        lines = [
            f"run {self.run_id} -> {self.root}",
            f"  inputs              {self.inputs}",
            f"  videos processed    {self.videos_processed}",
            f"  videos failed       {self.videos_failed}",
            f"  already done        {self.videos_skipped_done} (skipped)",
            f"  duplicate inputs    {self.videos_duplicate} (skipped)",
            f"  clips               {self.clips} ({self.clips_with_failures} with recorded failures)",
            f"  clips resumed       {self.clips_resumed} (committed by an earlier run)",
            f"  video seconds       {self.video_seconds:.1f} in {self.wall_seconds:.1f} s wall"
            f" = {self.speed:.2f} s of video per second",
            f"  executor            {self.executor}, {len(self.clips_by_node)} node(s),"
            f" peak worker memory {self.worker_peak_rss_mb:.0f} MiB,"
            f" {self.startup_seconds:.1f} s to start and load models, {self.shutdown_seconds:.1f} s to stop"
            + (f", workers busy {self.worker_busy_share:.0%} in between" if self.worker_busy_share else ""),
        ]
        if self.speaker_parts:
            lines.append(
                f"  speaker cuts        {self.speaker_parts} of the clips are parts of clips cut where the speaker changes"
            )
        if self.clips_lost or self.videos_lost:
            lines.append(
                f"  lost with a worker  {self.clips_lost} clips, {self.videos_lost} video rows"
                f" (its process died before committing them): done again, {self.clips_redone} clips"
            )
        if self.failures:
            lines.append("  failures by reason")
            lines += [
                f"    {reason:<18}{n}" for reason, n in sorted(self.failures.items(), key=lambda kv: -kv[1])
            ]
        if self.filter:
            lines.append("  " + self.filter.to_text().replace("\n", "\n  "))
        if self.identities:
            lines.append("  " + self.identities.to_text())
        if self.emotion_speakers and self.emotion_speakers.label_set:
            lines.append("  " + self.emotion_speakers.to_text())
        return "\n".join(lines)

    def write(self, root: DatasetRoot) -> str:
        """Write the summary whole to ``ROOT/runs/<run_id>.json``; returns its location."""
        text = json.dumps({**asdict(self), "speed": self.speed}, indent=2)
        return root.write_file(f"runs/{self.run_id}.json", text.encode())


def _seconds_processed(work: VideoWork) -> float:
    """Seconds of video this run processed: the whole video, or the clips it did after a resume."""
    if not work.clips_resumed:
        return float(work.video.get("duration_s") or 0.0)
    done = {o.clip_id for o in work.outcomes}
    return sum(c.duration_s for c in work.clips if c.clip_id in done)


def build_pipeline(config: Config, root: DatasetRoot) -> Pipeline:
    """The stage objects of a run, in order (shared by every executor), knowing what ``root``
    holds committed now."""
    done = root.committed()
    return Pipeline(root, config, stages(config, root, build(config), done), dataset_schemas(), done)


def build_executor(config: Config) -> Executor:
    """The executor of a run: ``[run] executor`` (``ray``: on ``[ray]``'s cluster, or ``sequential``)."""
    return RayExecutor(config.ray) if config.run.executor == "ray" else SequentialExecutor()


def build_map(config: Config) -> MapFn:
    """The ``map`` of a command's independent jobs (``curate export``'s shard files), chosen as
    :func:`build_executor` chooses: tasks on ``[ray]``'s cluster, or the builtin one in this process."""
    return ray_map(config.ray) if config.run.executor == "ray" else map


def nothing_new(root: DatasetRoot, inputs: list[str]) -> tuple[int, int] | None:
    """(done, duplicate) inputs when every input is a local file whose video and clips the root
    holds committed (a file that cannot be opened: its recorded failure), a repeated content
    counting as a duplicate: a rerun then has nothing new to do. None otherwise, found at the
    first input that is not done (one hash when data are new)."""
    if not root.exists():
        return None
    done = root.committed().done_videos
    seen: set[str] = set()
    for name in inputs:
        if is_uri(name):
            return None
        try:  # the id the probe stage records it under: its content's, or its name's when empty or unreadable
            video_id = content_id(Path(name)) if Path(name).stat().st_size else uri_id(name)
        except OSError:
            video_id = uri_id(name)
        if video_id not in seen and video_id not in done:
            return None
        seen.add(video_id)
    return len(seen), len(inputs) - len(seen)


def last_thresholds(root: DatasetRoot) -> str | None:
    """The thresholds hash of the root's latest filter decision set, if any."""
    con = connect(root, dataset_schemas())
    try:
        rows = con.sql(
            "select config_hash from decisions where source = 'filter' order by decided_at desc limit 1"
        ).fetchall()
    finally:
        con.close()
    return rows[0][0] if rows else None


def run(sources: list[str], out: str | Path, config: Config, progress: bool = True) -> RunSummary:
    """Process every video named by ``sources`` into the dataset root ``out`` (a folder, or an
    object-store URL such as ``s3://bucket/prefix``: see :mod:`manifests.fs`).

    Videos and clips committed by an earlier run are skipped, so a rerun after a crash does only
    what is missing. Raises :class:`NothingToRead` when the sources name nothing and
    :class:`~manifests.lock.RootBusy` when another live run writes to ``out``; per-video
    failures are recorded, not raised (unless ``[run] strict``): see ``summary.nothing_read``.
    The filters then judge every clip of the root (one new decision set, as ``curate filter``).
    """
    check_rules(config)
    tags: dict[str, dict[str, str]] = {}
    inputs = expand_sources(sources, tags)
    if not inputs:
        raise NothingToRead(f"no video inputs found in {sources}")
    cannot = unreadable(inputs)
    named = "; ".join(f"{name}: {why}" for name, why in list(cannot.items())[:5])
    more = f" (and {len(cannot) - 5} more)" if len(cannot) > 5 else ""
    if len(cannot) == len(inputs):
        raise NothingToRead(f"no input can be read: {named}{more}")
    if cannot:
        warnings.warn(
            f"{len(cannot)} of {len(inputs)} inputs cannot be read (each is recorded as a failure): {named}{more}",
            stacklevel=2,
        )
    root = DatasetRoot(out)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    done = nothing_new(root, inputs)
    if done and not (cutting(config) and pending_cuts(root, config)):
        # Nothing new: no cluster, and a new decision set only when the thresholds changed.
        summary = RunSummary(run_id, root.uri, "none (nothing new)", len(inputs))
        summary.videos_skipped_done, summary.videos_duplicate = done
        if last_thresholds(root) != in_effect(config).digest():
            summary.filter = apply_filters(root.uri, config)
        summary.write(root)
        return summary
    executor = build_executor(config)
    summary = RunSummary(run_id=run_id, root=root.uri, executor=executor.name, inputs=len(inputs))
    with hold(root, run_id):
        # What a killed run left: a damaged batch goes aside (its clips are redone), unrecorded files go.
        root.adopt_legacy()
        root.quarantine()
        root.sweep(older_than_s=COMPACTED_GRACE_S)
        started = time.perf_counter()
        works = (VideoWork(uri, run_id, tags.get(uri, {})) for uri in inputs)
        bar = tqdm(
            total=len(inputs), unit="video", desc="curate run", disable=not progress, dynamic_ncols=True
        )
        accounted: list[dict[str, Any]] = []
        made: dict[str, str] = {}  # clip id -> its input, for the clips this run finished
        written: dict[str, str] = {}  # video id -> its input, for the video rows this run wrote
        with bar:
            for work in executor.run(build_pipeline(config, root), works):
                summary.add(work)
                made.update((o.clip_id, work.uri) for o in work.outcomes)
                if not work.skipped:
                    written[work.video_id] = work.uri
                accounted.append(
                    {
                        "uri": work.uri,
                        "run_id": run_id,
                        "video_id": work.video.get("video_id"),
                        "outcome": work.outcome,
                        "duplicate_of_uri": work.duplicate_of,
                    }
                )
                bar.set_postfix(
                    clips=summary.clips, failed=summary.videos_failed, skipped=summary.videos_skipped_done
                )
                bar.update()
        # A worker that died holding finished clips took them along: their videos go round once more.
        committed = root.committed()
        lost_clips, lost_videos = set(made) - committed.clips, set(written) - committed.videos
        if lost_clips or lost_videos:
            summary.clips_lost, summary.videos_lost = len(lost_clips), len(lost_videos)
            again = sorted({made[c] for c in lost_clips} | {written[v] for v in lost_videos})
            works = (VideoWork(uri, run_id, tags.get(uri, {})) for uri in again)
            for work in executor.run(build_pipeline(config, root), works):
                summary.clips_redone += len(work.outcomes)
        if cutting(config):
            cut_speakers(root, config, executor, run_id, summary.add_parts)
        root.write_part("inputs", run_id, accounted, dataset_schemas()["inputs"])
        summary.wall_seconds = time.perf_counter() - started
        summary.worker_peak_rss_mb = executor.peak_worker_rss_mb()
        summary.startup_seconds = executor.startup_s
        summary.shutdown_seconds = executor.shutdown_s
        summary.worker_busy_share = executor.busy_share
    if not summary.nothing_read:
        summary.filter = apply_filters(root.uri, config)
        if "identity" in config.run.extractors:
            summary.identities = assign_root(root.uri, config)
        summary.emotion_speakers = label_speakers(root, config)
    summary.write(root)
    return summary


def label_speakers(root: DatasetRoot, config: Config) -> SpeakerLabelling | None:
    """Speaker-relative emotion labels of the root's clips (:mod:`extractors.emotion.speaker`),
    when the run reads emotion and ``[emotion] speaker_relative`` is on."""
    if (
        "emotion" not in config.run.extractors
        or not config.section("emotion", EmotionConfig).speaker_relative
    ):
        return None
    return label_root(root.uri, config, changed_only=True)
