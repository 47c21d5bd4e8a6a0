"""The isolated cost of the necessary work, in seconds of one core per second of video.

:func:`extractor_costs` pins the whole process to one core and runs every extractor of the
configuration, with the pipeline's settings, on each video as one clip: the audio decoded once
(timed apart), then each extractor timed alone, sharing the decoded media as the pipeline does
(the face extractor decodes the frames and keeps the crops emotion and quality measure).
Dividing a core count by the total gives an upper bound on seconds of video per wall second:
the same work with none of the pipeline's overheads (segmentation, scheduling, Ray, writing
Parquet). :func:`run_extractors` also serves the naive baseline, which shares nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.media import duration_s
from curate.cores import pin_threads
from extractors.base import ClipRef
from extractors.registry import build
from ingest.probe import probe
from settings.config import Config


def run_extractors(videos: list[Path], config: Config, shared: bool) -> dict[str, float]:
    """Wall seconds per extractor (and ``"audio decode"`` when ``shared``) over ``videos``, each
    video one clip, models loaded before the clock starts.

    ``shared``: the extractors share one decoded copy of the clip's media, as in the pipeline;
    otherwise each extractor is given a fresh clip and decodes the file itself.
    """
    extractors = build(config)
    for extractor in extractors:
        extractor.setup()
    spent = dict.fromkeys(["audio decode"] if shared else [], 0.0) | {e.name: 0.0 for e in extractors}
    try:
        for video in videos:
            has_audio = bool(probe(video).facts["has_audio"])
            ref = _clip(video, config, has_audio)
            if shared and has_audio:
                started = time.perf_counter()
                ref.audio()
                spent["audio decode"] += time.perf_counter() - started
            earlier: dict[str, object] = {}
            for extractor in extractors:
                started = time.perf_counter()
                out = extractor.extract(ref if shared else _clip(video, config, has_audio), earlier)
                spent[extractor.name] += time.perf_counter() - started
                earlier |= out.clip | out.track
    finally:
        for extractor in extractors:
            extractor.close()
    return spent


def _clip(video: Path, config: Config, has_audio: bool) -> ClipRef:
    return ClipRef(video, "bench", "bench", 0.0, duration_s(video), config.face.fps, has_audio)


def extractor_costs(videos: list[Path], config: Config) -> dict[str, float]:
    """Seconds of one core per second of video for each part of :func:`run_extractors` (shared
    media) and ``"total"``, summed over ``videos`` and divided by their summed duration (s).

    For the call, every thread of the process is pinned to one core (the lowest one it may use)
    and the previous affinities are restored at the end; run it on an otherwise idle machine, as
    the figures are wall seconds. Speech runs on one thread.
    """
    one_thread = config.speech.model_copy(update={"cpu_threads": 1, "device": "cpu"})
    with pinned({min(os.sched_getaffinity(0))}):
        spent = run_extractors(videos, config.model_copy(update={"speech": one_thread}), shared=True)
    media_s = sum(duration_s(v) for v in videos)
    if media_s <= 0:
        raise ValueError("the videos have no duration")
    costs = {name: seconds / media_s for name, seconds in spent.items()}
    costs["total"] = sum(costs.values())
    return costs


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Run the block with every thread of this process (and the processes it starts) on ``cpus``."""
    previous = pin_threads(cpus)
    try:
        yield
    finally:
        _restore(previous)


def _restore(previous: dict[int, set[int]]) -> None:
    """Give each thread still alive the affinity it had before :func:`~curate.cores.pin_threads`."""
    for tid, cpus in previous.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue
