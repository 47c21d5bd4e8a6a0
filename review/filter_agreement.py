"""``curate review calibrate``: how the automatic filters agree with reviewers, and thresholds
that would agree better. It proposes; it never changes the config or the decisions.

For each clip with a human verdict (gold, or the review verdict aggregated from its annotators),
"the reviewer rejects" is compared with
"the filter flags the clip for a reason" (the reason among its latest filter decision's, in
reject or review): precision, recall and Cohen's kappa per reason and for the filter as a whole.
For each threshold rule, the limit that best separates the reviewed clips' values by the
reviewers' verdicts is proposed when it agrees with more of them than the current limit does;
where none is, it estimates how many more reviews would move the limit: the current limit's lead
over the best other limit, divided by the share of reviewed clips that disagree with it (each such
review can cut the lead by one).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractors.registry import dataset_schemas, in_effect
from filters.rules import check
from manifests.store import DatasetRoot
from manifests.views import connect as connect_views
from settings.config import Config, Rule
from settings.errors import NothingToWorkOn


class NoReviews(NothingToWorkOn, RuntimeError):
    """No clip of the root has a reviewer's verdict yet."""


@dataclass(frozen=True)
class Agreement:
    flagged_and_rejected: int
    flagged_only: int
    rejected_only: int
    neither: int

    @property
    def n(self) -> int:
        return self.flagged_and_rejected + self.flagged_only + self.rejected_only + self.neither

    @property
    def precision(self) -> float | None:
        flagged = self.flagged_and_rejected + self.flagged_only
        return self.flagged_and_rejected / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        rejected = self.flagged_and_rejected + self.rejected_only
        return self.flagged_and_rejected / rejected if rejected else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa of the two yes/no raters (None when chance agreement is total)."""
        n = self.n
        observed = (self.flagged_and_rejected + self.neither) / n
        p_flag = (self.flagged_and_rejected + self.flagged_only) / n
        p_reject = (self.flagged_and_rejected + self.rejected_only) / n
        chance = p_flag * p_reject + (1 - p_flag) * (1 - p_reject)
        return None if chance >= 1 else (observed - chance) / (1 - chance)


def agreement(flags: list[bool], rejects: list[bool]) -> Agreement:
    pairs = list(zip(flags, rejects, strict=True))
    return Agreement(
        sum(f and r for f, r in pairs),
        sum(f and not r for f, r in pairs),
        sum(r and not f for f, r in pairs),
        sum(not f and not r for f, r in pairs),
    )


@dataclass(frozen=True)
class Proposal:
    rule: str
    column: str
    limit: str  # "min" | "max"
    current: float
    proposed: float
    agree_now: int  # reviewed clips the current limit agrees with
    agree_proposed: int


@dataclass(frozen=True)
class Holding:
    """A limit no other limit beats yet, and about how many more reviews would move it."""

    rule: str
    limit: str
    lead: int  # reviewed clips the current limit agrees with beyond the best other limit
    disagree_share: float  # share of reviewed clips (with a value) the current limit disagrees with
    reviews_to_move: int | None  # None: no reviewed clip disagrees, nothing says it will move


def _propose(
    name: str, rule: Rule, values: list[float | None], rejects: list[bool]
) -> list[Proposal | Holding]:
    known = [(v, r) for v, r in zip(values, rejects, strict=True) if v is not None]
    proposals: list[Proposal | Holding] = []
    for limit, current in (("min", rule.min), ("max", rule.max)):
        if current is None or not known:
            continue
        points = sorted({v for v, _ in known})
        candidates = [current, *((a + b) / 2 for a, b in itertools.pairwise(points))]

        def agrees(t: float, limit: str = limit) -> int:
            at_t = Rule(column=rule.column, **{limit: t})  # this limit alone, no band
            return sum((check(at_t, v) == "fail") == r for v, r in known)

        best = max(candidates, key=lambda t: (agrees(t), -abs(t - current)))
        if agrees(best) > agrees(current):
            proposals.append(
                Proposal(name, rule.column, limit, current, round(best, 4), agrees(current), agrees(best))
            )
            continue
        runner_up = max((agrees(t) for t in candidates if t != current), default=0)
        lead = agrees(current) - runner_up
        share = (len(known) - agrees(current)) / len(known)
        proposals.append(Holding(name, limit, lead, share, math.ceil((lead + 1) / share) if share else None))
    return proposals


@dataclass
class Calibration:
    reviewed: int
    overall: Agreement
    by_reason: dict[str, Agreement] = field(default_factory=dict)
    proposals: list[Proposal] = field(default_factory=list)
    holding: list[Holding] = field(default_factory=list)

    def to_text(self) -> str:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f}"

        lines = [
            f"{self.reviewed} clip(s) with a reviewer's verdict; reviewer rejects vs filter flags",
            "  reason               n  precision  recall  kappa",
        ]
        for name, a in [("(any reason)", self.overall), *sorted(self.by_reason.items())]:
            lines.append(
                f"  {name:<18} {a.n:>3}  {fmt(a.precision):>9}  {fmt(a.recall):>6}  {fmt(a.kappa):>5}"
            )
        lines.append("proposed thresholds (not applied; put them in [filter.rules] to use them):")
        for p in self.proposals:
            lines.append(
                f"  [filter.rules.{p.rule}] {p.limit} = {p.proposed:g}   (now {p.current:g}: agrees with {p.agree_now}/{self.reviewed}, proposed: {p.agree_proposed}/{self.reviewed})"
            )
        if not self.proposals:
            lines.append("  none: no limit agrees with more reviewed clips than the current ones")
        if self.holding:
            lines.append("limits that hold, and about how many more reviews would move them:")
        for h in self.holding:
            more = (
                "no reviewed clip disagrees"
                if h.reviews_to_move is None
                else f"~{h.reviews_to_move} more review(s)"
            )
            lines.append(
                f"  [filter.rules.{h.rule}] {h.limit}: leads the next limit by {h.lead}, disagrees with "
                f"{100 * h.disagree_share:.0f}% of reviewed clips: {more}"
            )
        return "\n".join(lines)


def calibrate(root_path: str | Path, config: Config) -> Calibration:
    """Agreement of the filters with reviewers on ``root_path``, and proposed limits."""
    con = connect_views(DatasetRoot(root_path), dataset_schemas())
    rows: list[dict[str, Any]] = (
        con.sql(
            """with latest as (
                 select *, row_number() over (partition by clip_id, source order by decided_at desc, decision_set desc) rn
                 from decisions)
               select c.*, h.verdict human, f.reasons filter_reasons, f.verdict filter_verdict
               from current_decisions h join clips c using (clip_id)
               left join latest f on f.clip_id = h.clip_id and f.source = 'filter' and f.rn = 1
               where h.source in ('review', 'gold') order by c.clip_id"""
        )
        .to_arrow_table()
        .to_pylist()
    )
    if not rows:
        raise NoReviews(f"{root_path} has no reviewer verdicts: run `curate review pull` first")
    rejects = [r["human"] == "reject" for r in rows]
    result = Calibration(
        len(rows), agreement([(r["filter_verdict"] or "accept") != "accept" for r in rows], rejects)
    )
    thresholds = in_effect(config).active
    reasons = {reason for r in rows for reason in r["filter_reasons"] or []} | set(thresholds)
    for reason in sorted(reasons):
        result.by_reason[reason] = agreement([reason in (r["filter_reasons"] or []) for r in rows], rejects)
    for name, rule in thresholds.items():
        for found in _propose(name, rule, [r.get(rule.column) for r in rows], rejects):
            if isinstance(found, Proposal):
                result.proposals.append(found)
            else:
                result.holding.append(found)
    return result
