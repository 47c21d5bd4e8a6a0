"""Typed run configuration, read from one TOML file with a section per stage.

Unknown keys and out-of-range values are errors (:class:`ConfigError`), so a typo never turns
into a silently ignored setting. Every field has a default; an empty file is a valid config.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from settings.errors import InvalidInput
from settings.files import regular_file

#: What one ``curate query`` may use by default: memory (MB, DuckDB's limit; nothing spills to
#: disk) and wall seconds before it is stopped (``--memory-mb``, ``--timeout-s``).
QUERY_MEMORY_MB = 4096
QUERY_TIMEOUT_S = 600.0


class ConfigError(InvalidInput, ValueError):
    """The configuration file is missing, not TOML, or not valid."""


class Section(BaseModel):
    # NaN compares false with every limit (a rule would never fail) and infinity is no size: refused.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: Fields left out of :meth:`digest` (where a run ran, not what it produced).
    _not_hashed: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="after")
    def _no_repeats(self) -> Section:
        """A list setting names each thing once (``extractors = ["face", "face"]`` is a typo)."""
        for name, value in self:
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                repeated = sorted({v for v in value if value.count(v) > 1})
                if repeated:
                    raise ValueError(f"{name} names {repeated[0]!r} more than once")
        return self

    def digest(self) -> str:
        """Short hash of the settings, recorded with what they produced."""
        settings = self.model_dump(mode="json", exclude=self._not_hashed)
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


class SegmentConfig(Section):
    """Cutting videos into clips (seconds)."""

    min_clip_s: float = Field(2.0, gt=0, le=3600)
    max_clip_s: float = Field(20.0, gt=0, le=3600)
    min_silence_s: float = Field(0.25, gt=0, le=3600)
    silence_below_db: float = Field(
        30.0, gt=0, description="silence: this many dB under the loud (p95) level"
    )
    detect_shots: bool = True
    shot_threshold: float = Field(0.25, gt=0, le=1)

    @model_validator(mode="after")
    def _lengths(self) -> SegmentConfig:
        if self.max_clip_s < 2 * self.min_clip_s:
            raise ValueError("max_clip_s must be at least twice min_clip_s")
        return self


class ModelsConfig(Section):
    cache_dir: str | None = None
    paths: dict[str, str] = Field(default_factory=dict, description="model name -> local folder or file")


class RunConfig(Section):
    strict: bool = Field(False, description="raise unexpected extractor errors instead of recording them")
    extractors: list[str] = Field(
        default_factory=list,
        description="signals to compute, in order; one that needs another comes after it "
        "(default: every registered signal, in registration order)",
    )
    executor: Literal["ray", "sequential"] = "ray"
    batch_clips: int = Field(
        100,
        ge=1,
        le=100_000,
        description="a worker commits its finished clips as one part per table every this many clips",
    )
    batch_wait_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="... or once its oldest finished clip has waited this long (seconds)",
    )


class RayConfig(Section):
    """The Ray executor: where the cluster is and how much of it a run uses."""

    address: str | None = Field(
        None, description="join this cluster (also RAY_ADDRESS); none: start a local one"
    )
    workers: int | None = Field(
        None, ge=1, le=100_000, description="CPUs to use (local cluster size); none: every CPU of the cluster"
    )
    object_store_mb: int | None = Field(
        None, ge=64, le=16_777_216, description="local cluster object store; none: Ray's default"
    )
    own_pool: list[str] = Field(
        default_factory=list, description="extractors given their own worker pool even without GPUs"
    )
    task_retries: int = Field(1, ge=0, le=10, description="retries of a clip whose worker process died")
    pin_cores: bool = Field(
        True,
        description="each one-CPU worker claims a core of its host that no other curate worker holds and stays on it",
    )


class Rule(Section):
    """One threshold on a numeric ``clips`` column; within ``band`` of a limit the clip goes to review."""

    column: str
    min: float | None = None
    max: float | None = None
    band: float = Field(0.0, ge=0, description="half-width of the review band around each limit")
    missing: Literal["reject", "review", "accept"] = Field(
        "reject", description="what a null value (the score could not be measured) does"
    )
    beyond: Literal["reject", "review"] = Field(
        "reject", description="what a value beyond a limit and its band does (review: the rule never rejects)"
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _a_limit(self) -> Rule:
        if self.min is None and self.max is None:
            raise ValueError("a rule needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): every clip would fail")
        return self


#: Rules on the core columns (the signals bring their own: each extractor's ``default_rules``).
CORE_RULES: dict[str, Rule] = {"too_short": Rule(column="duration_s", min=2.0)}


def merge_rules(defaults: Mapping[str, Rule], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` rules (dicts of some fields, or whole rules) over ``defaults``, key by key."""
    merged: dict[str, Any] = {name: rule.model_dump() for name, rule in defaults.items()}
    for name, rule in given.items():
        merged[name] = {**merged.get(name, {}), **rule} if isinstance(rule, dict) else rule
    return merged


class FilterConfig(Section):
    """Thresholds of ``curate filter``: rule name (the reason code) -> rule.

    Rules given in the file are merged over the defaults, key by key: ``[filter.rules.face_missing]
    min = 0.8`` changes one limit and keeps the rest; ``enabled = false`` turns a rule off. The
    defaults are the core rules here and, in a :class:`Config` composed with signals, theirs.
    """

    rules: dict[str, Rule] = Field(default_factory=lambda: dict(CORE_RULES))
    languages: list[str] = Field(default_factory=list, description="accepted languages; empty: any")
    duplicates: Literal["reject", "review", "off"] = Field(
        "reject", description="what happens to a clip whose audio duplicates a better clip's"
    )
    duplicate_max_bit_error: float = Field(
        0.35, gt=0, lt=0.5, description="audio fingerprints closer than this share of bits are one recording"
    )
    duplicate_memory_mb: float = Field(
        1024.0,
        ge=64,
        le=1_048_576,
        description="memory the near-duplicate index's collision count holds at once (MB); the rest waits on disk",
    )
    parts_per_job: int = Field(
        64,
        ge=1,
        le=1_000_000,
        description="clips parts (run batches or compacted files) judged by one job; a root with more "
        "is judged by several jobs, on the [run] executor's workers when it is ray",
    )
    #: How the work is spread, not what it decides: left out of the thresholds' digest.
    _not_hashed: ClassVar[dict[str, Any]] = {"duplicate_memory_mb": True, "parts_per_job": True}

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("rules"), dict):
            data = {**data, "rules": merge_rules(CORE_RULES, data["rules"])}
        return data

    @property
    def active(self) -> dict[str, Rule]:
        return {name: rule for name, rule in self.rules.items() if rule.enabled}


class ReviewConfig(Section):
    """Human review in Label Studio. The API token is read from ``LABEL_STUDIO_API_TOKEN`` or from
    ``token_file``; it is never part of the config file."""

    url: str = Field("http://127.0.0.1:8080", description="Label Studio server (also LABEL_STUDIO_URL)")
    project: str = Field(
        "curate review", min_length=3, description="project title; one project per dataset root"
    )
    token_file: str | None = Field(
        None, description="file holding the API token (else LABEL_STUDIO_API_TOKEN)"
    )
    batch: int = Field(5, ge=1, le=500, description="tasks imported per request")
    files_root: str | None = Field(
        None,
        description="the server's local-files document root (also LOCAL_FILES_DOCUMENT_ROOT); none: the dataset root",
    )
    annotators_per_clip: int = Field(
        1, ge=1, le=20, description="annotations each clip gets (Label Studio's maximum_annotations)"
    )
    overlap_share: float = Field(
        1.0, ge=0.0, le=1.0, description="share of clips that get annotators_per_clip; the rest get one"
    )
    max_annotators: int = Field(
        5,
        ge=1,
        le=20,
        description="a clip whose annotators disagree goes back for one more annotator, up to this many",
    )
    agree_confidence: float = Field(
        0.9, gt=0.5, le=1.0, description="a review verdict below this confidence counts as a disagreement"
    )
    aggregation: Literal["dawid-skene", "majority"] = Field(
        "dawid-skene", description="how a clip's annotations become one verdict"
    )
    gold_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="gold clips pushed per review clip pushed (0: none)"
    )
    gold_confidence: float = Field(
        0.99,
        gt=0.5,
        le=1.0,
        description="a review verdict this confident, from annotators_per_clip or more annotations, serves as gold",
    )
    min_annotator_accuracy: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="an annotator whose accuracy the aggregation estimates (gold held) below this is flagged",
    )
    sampling: Literal["uncertainty", "sequential", "uniform"] = Field(
        "uncertainty", description="the order Label Studio serves tasks in (uncertainty: least certain first)"
    )


S = TypeVar("S", bound=Section)


class Config(Section):
    """The whole configuration (``curate.toml``): the core sections here, and one section per
    signal that has settings (``[face]``, ``[speech]``...).

    This class names no signal. :meth:`compose` makes the configuration of a set of signals
    (the signal registry's ``config_class`` composes it from the registered signals): their
    sections become fields, ``[run] extractors`` defaults to all of them and accepts no other
    name, and ``[filter] rules`` starts from the core rules and theirs.
    """

    run: RunConfig = RunConfig()
    segment: SegmentConfig = SegmentConfig()
    models: ModelsConfig = ModelsConfig()
    ray: RayConfig = RayConfig()
    filter: FilterConfig = FilterConfig()
    review: ReviewConfig = ReviewConfig()

    _not_hashed: ClassVar[dict[str, Any]] = {
        "ray": True,
        "run": {"executor"},
        "review": True,
        "filter": set(FilterConfig._not_hashed),
    }
    #: Set by :meth:`compose`: the signals, in order, and their default rules.
    signals: ClassVar[tuple[str, ...]] = ()
    signal_rules: ClassVar[dict[str, Rule]] = {}
    #: A module-level function that makes this configuration from its dumped settings.
    rebuild: ClassVar[Callable[[dict[str, Any]], Config]]

    @classmethod
    def compose(
        cls,
        signals: Sequence[str],
        sections: Mapping[str, type[Section]],
        rules: Mapping[str, Rule],
        rebuild: Callable[[dict[str, Any]], Config],
    ) -> type[Config]:
        """The configuration of ``signals`` (names, in order): ``sections`` maps a signal to its
        settings section, ``rules`` holds their default rules (name -> rule); ``rebuild``, an
        importable function, makes it from its dumped settings in another process."""
        clash = set(sections) & set(cls.model_fields)
        if clash:
            raise ValueError(f"a signal's section cannot be named like a core section: {sorted(clash)}")
        fields: dict[str, Any] = {
            name: (kind, Field(default_factory=kind)) for name, kind in sections.items()
        }
        composed = cast(
            type[Config], create_model("Config", __base__=cls, __module__=cls.__module__, **fields)
        )
        composed.signals = tuple(signals)
        composed.signal_rules = dict(rules)
        composed.rebuild = staticmethod(rebuild)  # type: ignore[assignment]
        composed.__doc__ = cls.__doc__
        return composed

    @model_validator(mode="before")
    @classmethod
    def _signal_defaults(cls, data: Any) -> Any:
        """Fill what depends on the signals: ``[run] extractors`` when not given, and the default
        rules under ``[filter] rules``."""
        if not cls.signals:  # a configuration without signals would judge with the core rules alone
            raise TypeError(
                "settings.config.Config names no signal: make a configuration with the signal "
                "registry's make_config() or load_config()"
            )
        if not isinstance(data, dict):
            return data
        data = dict(data)
        run = data.get("run", {})
        if isinstance(run, RunConfig):
            if "extractors" not in run.model_fields_set:
                data["run"] = run.model_copy(update={"extractors": list(cls.signals)})
        elif isinstance(run, dict) and "extractors" not in run:
            data["run"] = {**run, "extractors": list(cls.signals)}
        given = data.get("filter", {})
        if isinstance(given, FilterConfig):  # its fields as given, its rules whole
            given = {name: getattr(given, name) for name in given.model_fields_set}
        if isinstance(given, dict):
            defaults = {**cls.signal_rules, **CORE_RULES}
            data["filter"] = {**given, "rules": merge_rules(defaults, given.get("rules", {}))}
        return data

    @model_validator(mode="after")
    def _known_signals(self) -> Config:
        for key, names in (("[run] extractors", self.run.extractors), ("[ray] own_pool", self.ray.own_pool)):
            unknown = [n for n in names if n not in self.signals]
            if unknown:
                raise ValueError(
                    f"{key}: unknown extractor {unknown[0]!r}: one of {', '.join(self.signals) or '(none)'}"
                )
        return self

    def section(self, name: str, kind: type[S]) -> S:
        """The settings section of signal ``name``, of type ``kind``."""
        found = getattr(self, name, None)
        if not isinstance(found, kind):
            raise KeyError(f"this configuration has no [{name}] section of {kind.__name__}")
        return found

    def __reduce__(self) -> Any:
        """Pickled as its settings, rebuilt by the function that composed its class (a composed
        class has no importable name; that function has)."""
        return (type(self).rebuild, (self.model_dump(),))


def load_config(path: str | Path | None, kind: type[Config]) -> Config:
    """Read and validate ``path`` as a ``kind`` (a composed configuration, see
    the signal registry's ``load_config``); ``None`` gives the defaults."""
    if path is None:
        return kind()
    path = regular_file(path, "config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        return kind.model_validate(data, strict=True)  # a TOML value of the wrong type is refused
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
