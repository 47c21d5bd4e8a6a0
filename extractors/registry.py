"""The registered extractors, and the table schemas they complete.

Adding an extractor: write its module, add one line to ``EXTRACTORS``, add its test.
"""

from __future__ import annotations

import pyarrow as pa

from curate.config import Config
from extractors.base import Extractor
from extractors.face import FaceExtractor
from extractors.speech import SpeechExtractor
from manifests.schema import CLIP_FIELDS, DECISION_FIELDS, TRACK_FIELDS, VIDEO_FIELDS, compose

EXTRACTORS: dict[str, type[Extractor]] = {
    "face": FaceExtractor,
    "speech": SpeechExtractor,
}


def build(config: Config) -> list[Extractor]:
    """The extractors ``[run] extractors`` names, in that order, not yet set up."""
    return [EXTRACTORS[name](config) for name in config.run.extractors]


def dataset_schemas() -> dict[str, pa.Schema]:
    """Schema of every table: core columns plus the columns of every registered extractor."""
    clip_extra = [f for cls in EXTRACTORS.values() for f in cls.clip_fields]
    track_extra = [f for cls in EXTRACTORS.values() for f in cls.track_fields]
    return {
        "videos": compose(VIDEO_FIELDS, [], "videos"),
        "clips": compose(CLIP_FIELDS, clip_extra, "clips"),
        "tracks": compose(TRACK_FIELDS, track_extra, "tracks"),
        "decisions": compose(DECISION_FIELDS, [], "decisions"),
    }
