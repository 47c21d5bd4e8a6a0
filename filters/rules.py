"""Verdicts from clip rows and thresholds: pure functions, no model, no media, no I/O.

What a rule means lives here and nowhere else. A clip is rejected for every failure an
extractor recorded (``errors``: ``no_face``, ``no_speech``...); otherwise every rule of
:func:`rules` gives an :data:`Outcome`: a threshold rule (``[filter.rules]``) fails a value
beyond a limit by more than its band, sends one within the band to review and treats a null as
its ``missing`` says; the ``language`` rule fails a language outside ``[filter] languages``;
the ``duplicate`` rule fails (or reviews, as ``[filter] duplicates`` says) a clip whose audio
duplicates a better clip's (``duplicate_of``, found by :mod:`filters.duplicates`). Every reason
is named. Push, the report and review calibration ask :func:`check`, :func:`closeness` and
:func:`bands` what a limit and a band mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from manifests.schema import error_code
from settings.config import FilterConfig, Rule

Outcome = Literal["pass", "review", "fail"]

VERDICTS = ("accept", "review", "reject")
#: What a null value does, by a threshold rule's ``missing``.
MISSING: dict[str, Outcome] = {"reject": "fail", "review": "review", "accept": "pass"}


@dataclass(frozen=True)
class Verdict:
    """``verdict``: accept | review | reject; ``reasons``: reject reasons, then review reasons."""

    verdict: str
    reasons: list[str] = field(default_factory=list)


def check(rule: Rule, value: float | None) -> Outcome:
    """``"pass"``, ``"review"`` (within ``band`` of a limit) or ``"fail"`` (beyond it, unless the
    rule's ``beyond`` is review) for one value; a missing value as the rule's ``missing`` says."""
    if value is None:
        return MISSING[rule.missing]
    beyond: Outcome = "fail" if rule.beyond == "reject" else "review"
    outcome: Outcome = "pass"
    if rule.min is not None:
        if value < rule.min - rule.band:
            return beyond
        if value < rule.min + rule.band:
            outcome = "review"
    if rule.max is not None:
        if value > rule.max + rule.band:
            return beyond
        if value > rule.max - rule.band:
            outcome = "review"
    return outcome


def closeness(rule: Rule, value: float | None) -> float:
    """How close ``value`` is to the nearest limit of ``rule``, 0..1: 1 on the limit, 0 at the
    edge of the review band or beyond it (and for a null, or a rule without a band)."""
    if value is None or rule.band == 0:
        return 0.0
    limits = [v for v in (rule.min, rule.max) if v is not None]
    return max(0.0, 1.0 - min(abs(value - limit) for limit in limits) / rule.band)


def bands(rule: Rule) -> list[tuple[float, float, float]]:
    """Each limit of ``rule`` with its review band: (limit, low, high); a value inside (low,
    high) goes to review, one beyond it on the failing side fails."""
    return [
        (limit, limit - rule.band, limit + rule.band) for limit in (rule.min, rule.max) if limit is not None
    ]


class RowRule(Protocol):
    """A rule of any kind: the outcome for one clip row."""

    def outcome(self, row: Mapping[str, Any]) -> Outcome: ...


@dataclass(frozen=True)
class ThresholdRule:
    """A ``[filter.rules]`` threshold on a numeric column."""

    rule: Rule

    def outcome(self, row: Mapping[str, Any]) -> Outcome:
        return check(self.rule, row.get(self.rule.column))


@dataclass(frozen=True)
class LanguageRule:
    """``[filter] languages``: a clip in another language (or none) fails; no list: all pass."""

    languages: tuple[str, ...]

    def outcome(self, row: Mapping[str, Any]) -> Outcome:
        return "fail" if self.languages and row.get("speech_language") not in self.languages else "pass"


@dataclass(frozen=True)
class DuplicateRule:
    """``[filter] duplicates``: a clip whose audio duplicates a better clip's (``duplicate_of``)."""

    action: Literal["reject", "review", "off"]

    def outcome(self, row: Mapping[str, Any]) -> Outcome:
        if not row.get("duplicate_of") or self.action == "off":
            return "pass"
        return "fail" if self.action == "reject" else "review"


def rules(config: FilterConfig) -> dict[str, RowRule]:
    """Every rule that judges a clip, by its reason code: the active threshold rules, then
    ``language`` and ``duplicate``."""
    found: dict[str, RowRule] = {name: ThresholdRule(rule) for name, rule in config.active.items()}
    found["language"] = LanguageRule(tuple(config.languages))
    found["duplicate"] = DuplicateRule(config.duplicates)
    return found


def judge(row: Mapping[str, Any], config: FilterConfig, made: Mapping[str, RowRule] | None = None) -> Verdict:
    """The verdict on one clip row (a dict of the ``clips`` table's columns, plus ``duplicate_of``);
    ``made``: ``rules(config)`` made once by a caller judging many rows (two thirds of the time)."""
    errors = row.get("errors") or {}
    if not isinstance(errors, Mapping):  # DuckDB and pyarrow hand maps over as (key, value) pairs
        errors = dict(errors)
    rejected = sorted({error_code(message) for message in errors.values()})
    review: list[str] = []
    if not rejected:  # a failed extractor leaves nulls: its failure is the reason, not the rules
        for name, rule in (made or rules(config)).items():
            outcome = rule.outcome(row)
            if outcome == "fail":
                rejected.append(name)
            elif outcome == "review":
                review.append(name)
    if rejected:
        return Verdict("reject", rejected + review)
    return Verdict("review", review) if review else Verdict("accept")
