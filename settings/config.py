"""Typed run configuration, read from one TOML file with a section per stage.

Unknown keys and out-of-range values are errors (:class:`ConfigError`), so a typo never turns
into a silently ignored setting. Every field has a default; an empty file is a valid config.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from settings.errors import InvalidInput

#: Languages with at least about 1,000 hours of Whisper training speech. Whisper's language
#: identification on clips of a few seconds confuses well-covered languages with poorly covered
#: ones (an English fixture reads as Welsh, p=0.70, with the base model), so detection is
#: restricted to these by default; an empty list allows all of Whisper's languages.
WELL_COVERED_LANGUAGES = [
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "fr",
    "pt",
    "ko",
    "ja",
    "tr",
    "pl",
    "it",
    "sv",
    "nl",
    "ca",
    "fi",
    "id",
]


class ConfigError(InvalidInput, ValueError):
    """The configuration file is missing, not TOML, or not valid."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields left out of :meth:`digest` (where a run ran, not what it produced).
    _not_hashed: ClassVar[dict[str, Any]] = {}

    def digest(self) -> str:
        """Short hash of the settings, recorded with what they produced."""
        settings = self.model_dump(mode="json", exclude=self._not_hashed)
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


class SegmentConfig(Section):
    """Cutting videos into clips (seconds)."""

    min_clip_s: float = Field(2.0, gt=0)
    max_clip_s: float = Field(20.0, gt=0)
    min_silence_s: float = Field(0.25, gt=0)
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


class FaceConfig(Section):
    """MediaPipe Face Landmarker over each clip."""

    model: str = "face-landmarker"
    fps: float = Field(30.0, gt=0, le=120, description="constant output rate of the tracks")
    max_faces: int = Field(2, ge=1, le=8, description="faces tracked per frame; >= 2 to count extra faces")
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    min_detect_rate: float = Field(
        0.05, ge=0, le=1, description="below this share of frames with a face: no_face"
    )
    min_score_frames: int = Field(
        30,
        ge=1,
        description="frames with a face that emotion, quality and sync need to score a clip; with "
        "fewer their face scores are null and <extractor>_skipped says why (no rejection)",
    )
    redetect: bool = Field(
        True,
        description="where the landmarker finds no face, look again around the last face box "
        "(upscaled crop) or, once a second while none is known, over tiles of the frame: small faces "
        'in large frames (docs/benchmarks.md, "Small faces")',
    )
    mirror_average: bool = Field(
        True,
        description="average each frame's blendshapes with the mirrored frame's (left and right "
        "swapped): mirror inconsistency 0.024 -> 0.003 a channel, no added lag, at twice the "
        "landmarker's cost (false: the raw labels, twice as fast)",
    )


class SpeechConfig(Section):
    """faster-whisper transcription of each clip."""

    model: str = "whisper-base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto: int8 on CPU, float16 on CUDA")
    beam_size: int = Field(1, ge=1, le=10)
    languages: list[str] = Field(default_factory=lambda: list(WELL_COVERED_LANGUAGES))
    min_speech_ratio: float = Field(0.05, ge=0, le=1, description="below this VAD speech share: no_speech")
    cpu_threads: int = Field(0, ge=0, description="0: let CTranslate2 choose")


class SyncConfig(Section):
    """Audio-visual sync scored with a model learned across clips (``curate sync train``)."""

    model: str = Field(
        "sync-default", description="registry name of the sync model, or a .npz file from `curate sync train`"
    )
    search_frames: int = Field(15, ge=1, le=60, description="shifts tried either way, frames")
    significance_z: float = Field(
        2.0, ge=0, description="sync_confidence from which the offset is reported (below: unknown, null)"
    )


class EmotionConfig(Section):
    """Expression classes from face crops, and expressiveness."""

    model: str = "expression-fer"
    frames: int = Field(16, ge=1, le=256, description="face crops classified per clip")


class QualityConfig(Section):
    """Technical quality."""

    frames: int = Field(8, ge=1, le=256, description="face crops measured per clip")


class ModelsConfig(Section):
    cache_dir: str | None = None
    paths: dict[str, str] = Field(default_factory=dict, description="model name -> local folder or file")


#: The one list of extractors: name -> "module:Class". ``[run] extractors`` takes its names (by
#: default all of them, in this order); ``extractors.registry`` loads the classes, which declare
#: their columns, models and what they read. Adding an extractor is one line here
#: (docs/architecture.md, "Adding a signal").
EXTRACTOR_CLASSES: dict[str, str] = {
    "face": "extractors.face:FaceExtractor",
    "speech": "extractors.speech:SpeechExtractor",
    "fingerprint": "extractors.fingerprint:FingerprintExtractor",
    "sync": "extractors.sync:SyncExtractor",
    "emotion": "extractors.emotion:EmotionExtractor",
    "quality": "extractors.quality:QualityExtractor",
}


def _known_extractors(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in EXTRACTOR_CLASSES]
    if unknown:
        raise ValueError(f"unknown extractor {unknown[0]!r}: one of {', '.join(EXTRACTOR_CLASSES)}")
    return names


class RunConfig(Section):
    strict: bool = Field(False, description="raise unexpected extractor errors instead of recording them")
    extractors: list[str] = Field(
        default_factory=lambda: list(EXTRACTOR_CLASSES),
        description="in order; one that needs another comes after it",
    )
    executor: Literal["ray", "sequential"] = "ray"
    batch_clips: int = Field(
        100,
        ge=1,
        description="a worker commits its finished clips as one part per table every this many clips",
    )
    batch_wait_s: float = Field(
        60.0, gt=0, description="... or once its oldest finished clip has waited this long (seconds)"
    )

    _known = field_validator("extractors")(_known_extractors)


class RayConfig(Section):
    """The Ray executor: where the cluster is and how much of it a run uses."""

    address: str | None = Field(
        None, description="join this cluster (also RAY_ADDRESS); none: start a local one"
    )
    workers: int | None = Field(
        None, ge=1, description="CPUs to use (local cluster size); none: every CPU of the cluster"
    )
    object_store_mb: int | None = Field(
        None, ge=64, description="local cluster object store; none: Ray's default"
    )
    own_pool: list[str] = Field(
        default_factory=list, description="extractors given their own worker pool even without GPUs"
    )
    task_retries: int = Field(1, ge=0, le=10, description="retries of a clip whose worker process died")
    pin_cores: bool = Field(
        True,
        description="each one-CPU worker claims a core of its host that no other curate worker holds and stays on it",
    )

    _known = field_validator("own_pool")(_known_extractors)


class Rule(Section):
    """One threshold on a numeric ``clips`` column; within ``band`` of a limit the clip goes to review."""

    column: str
    min: float | None = None
    max: float | None = None
    band: float = Field(0.0, ge=0, description="half-width of the review band around each limit")
    missing: Literal["reject", "review", "accept"] = Field(
        "reject", description="what a null value (the score could not be measured) does"
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _a_limit(self) -> Rule:
        if self.min is None and self.max is None:
            raise ValueError("a rule needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): every clip would fail")
        return self


def _default_rules() -> dict[str, Rule]:
    return {
        "face_missing": Rule(column="face_detect_rate", min=0.9, band=0.05),
        # Over the frames with a face only: a frame where the detector missed the face is
        # face_missing's business, not a second face (docs/scores.md).
        "multiple_faces": Rule(column="face_multi_rate", max=0.1, band=0.05, missing="accept"),
        "little_speech": Rule(column="speech_ratio", min=0.3, band=0.1),
        "language_uncertain": Rule(column="speech_language_prob", min=0.5, band=0.1),
        "too_short": Rule(column="duration_s", min=2.0),
        # Sync scores are calibrated z-scores (docs/sync.md): reject only on strong evidence of
        # foreign audio (z < 0.5) or of a shift beyond 13 frames; weak evidence goes to review;
        # an offset too uncertain to report (null) is left to out_of_sync, which reviews it.
        "out_of_sync": Rule(column="sync_confidence", min=1.25, band=0.75, missing="review"),
        "sync_offset": Rule(column="sync_offset_frames", min=-8, max=8, band=5, missing="accept"),
        # Null when too few frames have a face ([face] min_score_frames): weak evidence, a person looks.
        "face_too_small": Rule(column="quality_face_px", min=64, band=16, missing="review"),
        "too_dark": Rule(column="quality_brightness", min=40, band=10, missing="review"),
        "noisy_audio": Rule(column="quality_snr_db", min=12, band=4),
        "clipped_audio": Rule(column="quality_clipping", max=0.01, band=0.005),
    }


class FilterConfig(Section):
    """Thresholds of ``curate filter``: rule name (the reason code) -> rule.

    Rules given in the file are merged over the defaults, key by key: ``[filter.rules.face_missing]
    min = 0.8`` changes one limit and keeps the rest; ``enabled = false`` turns a rule off.
    """

    rules: dict[str, Rule] = Field(default_factory=_default_rules)
    languages: list[str] = Field(default_factory=list, description="accepted languages; empty: any")
    duplicates: Literal["reject", "review", "off"] = Field(
        "reject", description="what happens to a clip whose audio duplicates a better clip's"
    )
    duplicate_max_bit_error: float = Field(
        0.35, gt=0, lt=0.5, description="audio fingerprints closer than this share of bits are one recording"
    )

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("rules"), dict):
            merged = {name: rule.model_dump() for name, rule in _default_rules().items()}
            for name, given in data["rules"].items():
                merged[name] = {**merged.get(name, {}), **given} if isinstance(given, dict) else given
            data = {**data, "rules": merged}
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


class Config(Section):
    """The whole configuration (``curate.toml``)."""

    run: RunConfig = RunConfig()
    segment: SegmentConfig = SegmentConfig()
    face: FaceConfig = FaceConfig()
    speech: SpeechConfig = SpeechConfig()
    sync: SyncConfig = SyncConfig()
    emotion: EmotionConfig = EmotionConfig()
    quality: QualityConfig = QualityConfig()
    models: ModelsConfig = ModelsConfig()
    ray: RayConfig = RayConfig()
    filter: FilterConfig = FilterConfig()
    review: ReviewConfig = ReviewConfig()

    _not_hashed: ClassVar[dict[str, Any]] = {"ray": True, "run": {"executor"}, "review": True}


def load_config(path: str | Path | None) -> Config:
    """Read and validate ``path``; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
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
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
