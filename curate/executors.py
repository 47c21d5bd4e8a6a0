"""Executors: run the stage objects of :mod:`curate.pipeline` over the inputs.

The sequential executor runs everything in this process, one video after another; it is the
reference for tests and debugging.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from curate.pipeline import Stage, VideoWork


class SequentialExecutor:
    """Set every stage up once, pass each video through all stages in order, close them."""

    name = "sequential"

    def run(self, stages: Sequence[Stage], works: Iterable[VideoWork]) -> Iterator[VideoWork]:
        ready: list[Stage] = []
        try:
            for stage in stages:
                stage.setup()
                ready.append(stage)
            for work in works:
                for stage in stages:
                    work = stage(work)
                yield work
        finally:
            for stage in reversed(ready):
                stage.close()
