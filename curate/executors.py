"""Executors: run the stage objects of a :class:`~curate.pipeline.Pipeline` over the inputs.

Both yield each :class:`~curate.pipeline.VideoWork` once its video is committed (or skipped).
The sequential executor runs everything in this process, one clip after another: the reference
for tests and debugging. The Ray executor is in :mod:`curate.ray_executor`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from curate.pipeline import DuplicateInputs, Pipeline, VideoWork, peak_rss_mb


class Executor(Protocol):
    name: str

    def run(self, pipeline: Pipeline, works: Iterable[VideoWork]) -> Iterator[VideoWork]: ...

    def peak_worker_rss_mb(self) -> float: ...

    @property
    def startup_s(self) -> float:
        """Seconds from the start of the last :meth:`run` until its workers had their models loaded."""
        ...

    @property
    def shutdown_s(self) -> float:
        """Seconds from the last video done until the last :meth:`run` ended (its last commits,
        stopping workers)."""
        ...

    @property
    def busy_share(self) -> float | None:
        """Share of the worker time between start-up and shutdown spent in jobs (``None``: not
        measured, one process)."""
        ...


class SequentialExecutor:
    """Set every extract stage up once, pass each clip through all of them in order, close them."""

    name = "sequential"

    def __init__(self) -> None:
        self.startup_s = 0.0
        self.shutdown_s = 0.0
        self.busy_share: float | None = None

    def run(self, pipeline: Pipeline, works: Iterable[VideoWork]) -> Iterator[VideoWork]:
        ready = []
        duplicates = DuplicateInputs()
        started = time.perf_counter()
        try:
            for stage in pipeline.clip_stages:
                stage.setup()
                ready.append(stage)
            self.startup_s = time.perf_counter() - started
            for work in works:
                work = duplicates.check(pipeline.prepare(work))
                for clip in pipeline.pending_clips(work):
                    for stage in pipeline.clip_stages:
                        clip = stage(clip)
                    work.outcomes.append(pipeline.commit_clip(clip))
                yield pipeline.commit_video(work)
        finally:
            ending = time.perf_counter()
            pipeline.flush()  # what is held is whole clips: commit them, also when stopped early
            for stage in reversed(ready):
                stage.close()
            self.shutdown_s = time.perf_counter() - ending

    def peak_worker_rss_mb(self) -> float:
        return peak_rss_mb()
