"""The extractor classes of ``settings.config.EXTRACTOR_CLASSES``, and what derives from them:
the table schemas they complete, the models they load, the extractor behind each column.

Adding an extractor: docs/architecture.md, "Adding a signal".
"""

from __future__ import annotations

import importlib
from functools import cache

import pyarrow as pa

from extractors.base import Extractor
from manifests.schema import CLIP_FIELDS, DECISION_FIELDS, INPUT_FIELDS, TRACK_FIELDS, VIDEO_FIELDS, compose
from settings.config import EXTRACTOR_CLASSES, Config, ConfigError


@cache
def _load(path: str) -> type[Extractor]:
    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise TypeError(f"{path} is not an Extractor")
    return cls


def extractor_class(name: str) -> type[Extractor]:
    """The class registered as ``name``."""
    return _load(EXTRACTOR_CLASSES[name])


def extractor_classes() -> dict[str, type[Extractor]]:
    """Every registered extractor class, by name, in registration order."""
    return {name: extractor_class(name) for name in EXTRACTOR_CLASSES}


def column_owners() -> dict[str, str]:
    """``clips`` column -> the name of the extractor that fills it (core columns are absent)."""
    return {f.name: name for name, cls in extractor_classes().items() for f in cls.clip_fields}


def build(config: Config) -> list[Extractor]:
    """The extractors ``[run] extractors`` names, in that order, not yet set up.

    An extractor that needs another must come after it and share its worker pool, so neither
    may be given a pool of its own (``[ray] own_pool``).
    """
    names = config.run.extractors
    for i, name in enumerate(names):
        for need in extractor_class(name).needs:
            if need not in names[:i]:
                raise ConfigError(f"[run] extractors: {name!r} reads {need!r}, which must come before it")
            shared = {name, need} & set(config.ray.own_pool)
            if shared:
                raise ConfigError(
                    f"[ray] own_pool: {sorted(shared)[0]!r} cannot have its own pool: {name!r} reads {need!r} in the same worker"
                )
    return [extractor_class(name)(config) for name in names]


def models_used(config: Config) -> list[str]:
    """Registry names of every model the configured extractors load, each once, in order."""
    return list(dict.fromkeys(name for extractor in build(config) for name in extractor.models()))


def dataset_schemas() -> dict[str, pa.Schema]:
    """Schema of every table: core columns plus the columns of every registered extractor."""
    classes = extractor_classes().values()
    clip_extra = [f for cls in classes for f in cls.clip_fields]
    track_extra = [f for cls in classes for f in cls.track_fields]
    return {
        "videos": compose(VIDEO_FIELDS, [], "videos"),
        "clips": compose(CLIP_FIELDS, clip_extra, "clips"),
        "tracks": compose(TRACK_FIELDS, track_extra, "tracks"),
        "decisions": compose(DECISION_FIELDS, [], "decisions"),
        "inputs": compose(INPUT_FIELDS, [], "inputs"),
    }
