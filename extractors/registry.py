"""The registered signals, and everything composed from what they declare: the configuration
(their settings sections and default rules), the table schemas, the model registry, the
extractor behind each column, the rules in effect for the signals a run computes.

Adding a signal: its module, one line in :data:`SIGNALS` (docs/architecture.md, "Adding a signal").
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from extractors.base import Extractor
from extractors.emotion.extractor import EmotionExtractor
from extractors.face.extractor import FaceExtractor
from extractors.fingerprint.extractor import FingerprintExtractor
from extractors.identity.extractor import IdentityExtractor
from extractors.quality.extractor import QualityExtractor
from extractors.speech.extractor import SpeechExtractor
from extractors.sync.extractor import SyncExtractor
from extractors.synthetic.extractor import SyntheticExtractor
from manifests.schema import (
    CLIP_FIELDS,
    CLIP_IDENTITY_FIELDS,
    DECISION_FIELDS,
    EMOTION_SPEAKER_FIELDS,
    IDENTITY_UPDATE_FIELDS,
    INPUT_FIELDS,
    TRACK_FIELDS,
    VIDEO_FIELDS,
    compose,
)
from settings import config as settings
from settings.config import Config, ConfigError, FilterConfig
from settings.models import ModelSpec, ModelUnavailable

#: The signals, in their default order (``[run] extractors`` defaults to all of them). One line
#: each; a signal that reads another's columns (``needs``) comes after it.
SIGNALS: list[type[Extractor]] = [
    FaceExtractor,
    SpeechExtractor,
    FingerprintExtractor,
    SyncExtractor,
    EmotionExtractor,
    QualityExtractor,
    SyntheticExtractor,
    IdentityExtractor,
]


def extractor_classes() -> dict[str, type[Extractor]]:
    """Every registered extractor class, by name, in registration order."""
    return {cls.name: cls for cls in SIGNALS}


def extractor_class(name: str) -> type[Extractor]:
    """The class registered as ``name``."""
    return extractor_classes()[name]


@cache
def _config_class(signals: tuple[type[Extractor], ...]) -> type[Config]:
    return Config.compose(
        [cls.name for cls in signals],
        {cls.name: cls.settings_class for cls in signals if cls.settings_class is not None},
        {name: rule for cls in signals for name, rule in cls.default_rules.items()},
        rebuild=rebuild_config,
    )


def config_class() -> type[Config]:
    """The configuration of the registered signals (``curate.toml``'s sections)."""
    return _config_class(tuple(SIGNALS))


def make_config(**sections: Any) -> Config:
    """A configuration of the registered signals: ``sections`` by name, as section objects or
    dicts (what a TOML file holds); the rest default. Raises pydantic's ``ValidationError``."""
    return config_class().model_validate(sections)


def rebuild_config(settings: dict[str, Any]) -> Config:
    """A configuration from its dumped settings (how one travels to another process)."""
    return config_class().model_validate(settings)


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML file (``None``: the defaults); :class:`ConfigError` says what is wrong."""
    return settings.load_config(path, config_class())


def column_owners() -> dict[str, str]:
    """``clips`` column -> the name of the extractor that fills it (core columns are absent)."""
    return {f.name: name for name, cls in extractor_classes().items() for f in cls.clip_fields}


def build(config: Config) -> list[Extractor]:
    """The extractors ``[run] extractors`` names, in that order, not yet set up; each is told the
    face crops per clip that the others look at (the face extractor keeps them while it decodes).

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
    extractors = [extractor_class(name)(config) for name in names]
    crops = max((e.face_crops() for e in extractors), default=0)
    for extractor in extractors:
        extractor.crops_wanted = crops
    return extractors


def model_specs() -> dict[str, ModelSpec]:
    """Every model a registered signal may load, by registry name (``curate models list``)."""
    return {spec.name: spec for cls in SIGNALS for spec in cls.model_specs}


def model_spec(name: str) -> ModelSpec:
    """The registry entry of model ``name``; :class:`ModelUnavailable` for an unknown name."""
    specs = model_specs()
    if name not in specs:
        raise ModelUnavailable(f"unknown model {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def models_used(config: Config) -> list[str]:
    """Registry names of every model the configured extractors load, each once, in order."""
    return list(dict.fromkeys(name for extractor in build(config) for name in extractor.models()))


@cache
def _schemas(signals: tuple[type[Extractor], ...]) -> dict[str, pa.Schema]:
    clip_extra = [f for cls in signals for f in cls.clip_fields]
    track_extra = [f for cls in signals for f in cls.track_fields]
    return {
        "videos": compose(VIDEO_FIELDS, [], "videos"),
        "clips": compose(CLIP_FIELDS, clip_extra, "clips"),
        "tracks": compose(TRACK_FIELDS, track_extra, "tracks"),
        "decisions": compose(DECISION_FIELDS, [], "decisions"),
        "inputs": compose(INPUT_FIELDS, [], "inputs"),
        "emotion_speaker": compose(EMOTION_SPEAKER_FIELDS, [], "emotion_speaker"),
        "clip_identity": compose(CLIP_IDENTITY_FIELDS, [], "clip_identity"),
        "identity_updates": compose(IDENTITY_UPDATE_FIELDS, [], "identity_updates"),
    }


def dataset_schemas() -> dict[str, pa.Schema]:
    """Schema of every table: core columns plus the columns of every registered extractor."""
    return _schemas(tuple(SIGNALS))


def rules_off(config: Config) -> dict[str, str]:
    """Active rules whose column an extractor fills that ``[run] extractors`` leaves out (its
    column would be null on every clip): rule -> that extractor."""
    owners = column_owners()
    return {
        name: owners[rule.column]
        for name, rule in config.filter.active.items()
        if owners.get(rule.column, None) not in (None, *config.run.extractors)
    }


def in_effect(config: Config) -> FilterConfig:
    """``config.filter`` with the rules of :func:`rules_off` turned off: the thresholds that
    judge, and that push, the report and review calibration read."""
    off = rules_off(config)
    rules = {
        name: rule.model_copy(update={"enabled": False}) if name in off else rule
        for name, rule in config.filter.rules.items()
    }
    return config.filter.model_copy(update={"rules": rules})
