"""Verdicts from clip rows and thresholds: pure functions, no model, no media, no I/O.

A clip is rejected for every failure an extractor recorded (``errors``: ``no_face``,
``no_speech``...) and for every rule it fails by more than the rule's review band; within the
band it goes to review; otherwise it is accepted. A clip whose audio duplicates a better clip's
(``duplicate_of``, found by :mod:`filters.duplicates`) is rejected or sent to review as
``[filter] duplicates`` says. Every reason is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from manifests.schema import error_code
from settings.config import FilterConfig, Rule

VERDICTS = ("accept", "review", "reject")


@dataclass(frozen=True)
class Verdict:
    """``verdict``: accept | review | reject; ``reasons``: reject reasons, then review reasons."""

    verdict: str
    reasons: list[str] = field(default_factory=list)


def check(rule: Rule, value: float | None) -> str:
    """``"pass"``, ``"review"`` (within ``band`` of a limit) or ``"fail"`` for one value;
    a missing value as the rule's ``missing`` says."""
    if value is None:
        return {"reject": "fail", "review": "review", "accept": "pass"}[rule.missing]
    outcome = "pass"
    if rule.min is not None:
        if value < rule.min - rule.band:
            return "fail"
        if value < rule.min + rule.band:
            outcome = "review"
    if rule.max is not None:
        if value > rule.max + rule.band:
            return "fail"
        if value > rule.max - rule.band:
            outcome = "review"
    return outcome


def judge(row: Mapping[str, Any], config: FilterConfig) -> Verdict:
    """The verdict on one clip row (a dict of the ``clips`` table's columns, plus ``duplicate_of``)."""
    errors = row.get("errors") or {}
    if not isinstance(errors, Mapping):  # DuckDB and pyarrow hand maps over as (key, value) pairs
        errors = dict(errors)
    rejected = sorted({error_code(message) for message in errors.values()})
    review: list[str] = []
    if not rejected:  # a failed extractor leaves nulls: its failure is the reason, not the rules
        for name, rule in config.active.items():
            outcome = check(rule, row.get(rule.column))
            if outcome == "fail":
                rejected.append(name)
            elif outcome == "review":
                review.append(name)
        if config.languages and row.get("speech_language") not in config.languages:
            rejected.append("language")
        if row.get("duplicate_of") and config.duplicates != "off":
            (rejected if config.duplicates == "reject" else review).append("duplicate")
    if rejected:
        return Verdict("reject", rejected + review)
    return Verdict("review", review) if review else Verdict("accept")
