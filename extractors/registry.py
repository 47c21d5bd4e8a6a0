"""The registered extractors, and the table schemas they complete.

Adding an extractor: write its module, add one line to ``EXTRACTORS``, add its test.
"""

from __future__ import annotations

import pyarrow as pa

from extractors.base import Extractor
from extractors.emotion import EmotionExtractor
from extractors.face import FaceExtractor
from extractors.fingerprint import FingerprintExtractor
from extractors.quality import QualityExtractor
from extractors.speech import SpeechExtractor
from extractors.sync import SyncExtractor
from manifests.schema import CLIP_FIELDS, DECISION_FIELDS, INPUT_FIELDS, TRACK_FIELDS, VIDEO_FIELDS, compose
from settings.config import Config, ConfigError

EXTRACTORS: dict[str, type[Extractor]] = {
    "face": FaceExtractor,
    "speech": SpeechExtractor,
    "fingerprint": FingerprintExtractor,
    "sync": SyncExtractor,
    "emotion": EmotionExtractor,
    "quality": QualityExtractor,
}


def build(config: Config) -> list[Extractor]:
    """The extractors ``[run] extractors`` names, in that order, not yet set up.

    An extractor that needs another must come after it and share its worker pool, so neither
    may be given a pool of its own (``[ray] own_pool``).
    """
    names = config.run.extractors
    for i, name in enumerate(names):
        for need in EXTRACTORS[name].needs:
            if need not in names[:i]:
                raise ConfigError(f"[run] extractors: {name!r} reads {need!r}, which must come before it")
            shared = {name, need} & set(config.ray.own_pool)
            if shared:
                raise ConfigError(
                    f"[ray] own_pool: {sorted(shared)[0]!r} cannot have its own pool: {name!r} reads {need!r} in the same worker"
                )
    return [EXTRACTORS[name](config) for name in names]


def models_used(config: Config) -> list[str]:
    """Registry names of every model the configured extractors load, each once, in order."""
    return list(dict.fromkeys(name for extractor in build(config) for name in extractor.models()))


def dataset_schemas() -> dict[str, pa.Schema]:
    """Schema of every table: core columns plus the columns of every registered extractor."""
    clip_extra = [f for cls in EXTRACTORS.values() for f in cls.clip_fields]
    track_extra = [f for cls in EXTRACTORS.values() for f in cls.track_fields]
    return {
        "videos": compose(VIDEO_FIELDS, [], "videos"),
        "clips": compose(CLIP_FIELDS, clip_extra, "clips"),
        "tracks": compose(TRACK_FIELDS, track_extra, "tracks"),
        "decisions": compose(DECISION_FIELDS, [], "decisions"),
        "inputs": compose(INPUT_FIELDS, [], "inputs"),
    }
