"""Clips cut where their speaker changes.

The identity signal finds a clip whose subject's face becomes another person's (a cut from one
speaker to the next that no shot boundary caught) and says which of its two one-person parts are
long enough to be clips (``identity_parts``; the rule ``speaker_cut`` then rejects the whole
clip, its parts standing for it). At the end of a run, :func:`cut_speakers` plans those parts as
clips of their own (``cut_start`` / ``cut_end`` = ``speaker`` at the change) and sends their
videos through the run's stages once more, the planning stage replaced by :class:`CutStage`:
every signal is extracted anew for each part, which the filters then judge like any clip. A part
can be cut again (three people in turn), at most :data:`ROUNDS` deep. The plan is derived from
the committed rows alone, so a run stopped half way finishes the parts when run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from curate.executors import Executor
from curate.pipeline import Pipeline, PlannedClip, VideoWork, damaged_seconds, stages
from extractors.identity.extractor import IdentityConfig, part_spans
from extractors.registry import build, dataset_schemas
from ingest.segment import clip_id
from manifests.store import Committed, DatasetRoot
from manifests.views import connect
from settings.config import Config

#: Rounds of cutting in one run at most (a part of a part of a clip).
ROUNDS = 3
#: What ``cut_start`` / ``cut_end`` say at a change of speaker.
SPEAKER = "speaker"


@dataclass(frozen=True)
class VideoCuts:
    """A video whose clips were found to hold two people: where to read it, and the parts not
    yet committed."""

    uri: str
    parts: list[PlannedClip]


def cutting(config: Config) -> bool:
    """Whether a run with ``config`` cuts clips at a change of speaker."""
    return "identity" in config.run.extractors and config.section("identity", IdentityConfig).cut


def pending_cuts(root: DatasetRoot, config: Config) -> dict[str, VideoCuts]:
    """The parts of the root's cut clips (``identity_parts`` > 0) that are not committed yet,
    by video id; each part at least ``[segment] min_clip_s`` long."""
    if not root.exists():
        return {}
    committed = root.committed().clips
    con = connect(root, dataset_schemas())
    try:
        rows = con.sql(
            """select c.video_id, c.clip_index, c.start_s, c.end_s, c.cut_start, c.cut_end, c.fps,
                      c.identity_before_s, c.identity_change_s, v.uri, v.damaged_spans
               from clips c join (select video_id, any_value(uri) uri, any_value(damaged_spans) damaged_spans
                                  from videos group by 1) v using (video_id)
               where c.identity_parts > 0 order by c.video_id, c.start_s"""
        ).fetchall()
    finally:
        con.close()
    shortest = config.segment.min_clip_s
    found: dict[str, VideoCuts] = {}
    for video, index, start, end, cut_start, cut_end, fps, before, change, uri, damaged in rows:
        first, second = part_spans(start, end, fps, before, change)
        for (s, e), (why_start, why_end) in ((first, (cut_start, SPEAKER)), (second, (SPEAKER, cut_end))):
            part = PlannedClip(
                clip_id(video, s, e),
                video,
                index,
                s,
                e,
                why_start,
                why_end,
                fps,
                damaged_seconds(damaged or [], s, e),
            )
            if e - s >= shortest and part.clip_id not in committed:
                found.setdefault(video, VideoCuts(uri, [])).parts.append(part)
    return found


class CutStage:
    """The planning stage of a cut round: a video's clips are its pending parts."""

    name = "cut"

    def __init__(self, parts: dict[str, list[PlannedClip]]):
        self.parts = parts

    def __call__(self, work: VideoWork) -> VideoWork:
        if work.active:
            work.clips = list(self.parts.get(work.video_id, []))
        return work


def cut_speakers(
    root: DatasetRoot, config: Config, executor: Executor, run_id: str, seen: Callable[[VideoWork], None]
) -> None:
    """Extract the pending parts of the root's cut clips with ``executor`` (rounds until none is
    left, at most :data:`ROUNDS`), handing each video's work (its parts committed in
    ``outcomes``) to ``seen``."""
    for _ in range(ROUNDS):
        cuts = pending_cuts(root, config)
        if not cuts:
            break
        now = root.committed()
        done = Committed(now.clips, now.videos, now.done_videos - set(cuts))
        planner = CutStage({video: c.parts for video, c in cuts.items()})
        pipeline = Pipeline(
            root, config, stages(config, root, build(config), done, planner), dataset_schemas(), done
        )
        for work in executor.run(pipeline, (VideoWork(c.uri, run_id) for c in cuts.values())):
            seen(work)
