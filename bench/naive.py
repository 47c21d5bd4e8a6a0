"""The naive baseline: the sequential script a data engineer writes first, timed end to end.

The same extractors as the pipeline, on each whole file as one clip, one after the other in one
process, each opening and decoding the file itself (no decoded audio or frames shared between
them), no segmentation, no parallelism beyond what the libraries do on their own.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.bound import run_extractors
from settings.config import Config


def naive_seconds(videos: list[Path], config: Config) -> float:
    """Wall seconds to process ``videos`` one after the other, model loading included."""
    started = time.perf_counter()
    run_extractors(videos, config, shared=False)
    return time.perf_counter() - started
