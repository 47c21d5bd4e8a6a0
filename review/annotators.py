"""What the root knows of its annotators: every annotation pulled, the gold verdicts, the
aggregate verdict of each clip, agreement (Krippendorff's alpha) overall, per pull and per filter
reason, and each annotator's quality (``curate review annotators``).

Annotation rows are the decisions of source ``annotation`` (and, in roots pulled before
annotations were aggregated, ``review`` rows that carry an annotation id); an edited annotation
counts once, as last pulled. Gold verdicts are the decisions of source ``gold``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot
from manifests.views import connect as connect_views
from review.aggregate import AGGREGATORS, Aggregation, Annotation, krippendorff_alpha
from settings.config import ReviewConfig

#: Each clip's latest filter reasons (SQL over the ``decisions`` view).
LATEST_FILTER_REASONS = """select clip_id, arg_max(reasons, decided_at) reasons from decisions
                           where source = 'filter' group by clip_id"""
#: The verdicts an annotator chooses from (review/labeling.xml).
VERDICTS = ("accept", "reject")


@dataclass(frozen=True)
class AnnotatorStats:
    who: str
    annotations: int
    gold_seen: int
    gold_accuracy: float | None  # share of gold clips given their known verdict
    agreement: float | None  # share of other clips given the aggregate verdict
    estimated_accuracy: float  # from the aggregation, gold held: what flags an annotator
    flagged: bool


@dataclass
class ReviewState:
    annotations: list[dict[str, Any]]  # one row per annotation (latest edit)
    gold: dict[str, str]  # clip_id -> known verdict
    aggregation: Aggregation
    annotators: list[AnnotatorStats] = field(default_factory=list)
    alpha: float | None = None
    alpha_by_pull: dict[str, float | None] = field(default_factory=dict)
    alpha_by_reason: dict[str, float | None] = field(default_factory=dict)

    def by_clip(self) -> dict[str, list[dict[str, Any]]]:
        """The annotations grouped by clip_id."""
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self.annotations:
            grouped[r["clip_id"]].append(r)
        return grouped

    def to_text(self) -> str:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.0f}%"

        def num(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f}"

        clips = {r["clip_id"] for r in self.annotations}
        lines = [
            f"{len(self.annotations)} annotation(s) of {len(clips)} clip(s), {len(self.gold)} gold clip(s); "
            f"aggregation {self.aggregation.method}; Krippendorff's alpha {num(self.alpha)}",
            "  annotator                        annotations  gold seen  gold acc  agrees  estimated  flag",
        ]
        for a in self.annotators:
            lines.append(
                f"  {a.who:<32} {a.annotations:>11}  {a.gold_seen:>9}  {pct(a.gold_accuracy):>8}  "
                f"{pct(a.agreement):>6}  {pct(a.estimated_accuracy):>9}  {'FLAGGED' if a.flagged else ''}"
            )
        if self.alpha_by_reason:
            lines.append(
                "alpha per filter reason: "
                + ", ".join(f"{k} {num(v)}" for k, v in self.alpha_by_reason.items())
            )
        if self.alpha_by_pull:
            lines.append(
                "alpha per pull: " + ", ".join(f"{k} {num(v)}" for k, v in self.alpha_by_pull.items())
            )
        return "\n".join(lines)


def annotation_rows(root: DatasetRoot) -> list[dict[str, Any]]:
    """Every annotation pulled into ``root`` (its latest edit), with the clip's latest filter reasons."""
    con = connect_views(root, dataset_schemas())
    rows: list[dict[str, Any]] = (
        con.sql(
            f"""with a as (
                 select *, row_number() over (
                   partition by split_part(annotation, '@', 1) order by decided_at desc, decision_set desc) rn
                 from decisions
                 where annotation is not null and source in ('annotation', 'review')),
               f as ({LATEST_FILTER_REASONS})
               select a.* exclude (rn), f.reasons filter_reasons
               from a left join f on f.clip_id = a.clip_id
               where a.rn = 1 order by a.clip_id, a.who"""
        )
        .to_arrow_table()
        .to_pylist()
    )
    return rows


def gold_verdicts(root: DatasetRoot) -> dict[str, str]:
    """clip_id -> the latest gold verdict given for it."""
    con = connect_views(root, dataset_schemas())
    rows = con.sql(
        """select clip_id, arg_max(verdict, decided_at) from decisions
           where source = 'gold' group by clip_id"""
    ).fetchall()
    return {clip: verdict for clip, verdict in rows}


def triples(rows: list[dict[str, Any]]) -> list[Annotation]:
    return [(r["clip_id"], r["who"], r["verdict"]) for r in rows]


def _alpha_by(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        value = r[key]
        for v in (value if isinstance(value, list) else [value] if value is not None else []) or ["(none)"]:
            groups[str(v)].append(r)
    return {k: krippendorff_alpha(triples(g)) for k, g in sorted(groups.items())}


def annotator_stats(
    rows: list[dict[str, Any]], gold: dict[str, str], aggregation: Aggregation, min_accuracy: float
) -> list[AnnotatorStats]:
    """Each annotator's figures; flagged when the aggregation's estimate of their accuracy (which
    holds gold and weighs every clip they share with others) is below ``min_accuracy``: on 15
    gold clips alone, 80% and 75% accuracy cannot be told apart (docs/review.md)."""
    by_who: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_who[r["who"]].append(r)
    stats = []
    for who, mine in sorted(by_who.items()):
        on_gold = [r["verdict"] == gold[r["clip_id"]] for r in mine if r["clip_id"] in gold]
        others = [
            r["verdict"] == aggregation.items[r["clip_id"]].label
            for r in mine
            if r["clip_id"] not in gold and r["clip_id"] in aggregation.items
        ]
        gold_accuracy = sum(on_gold) / len(on_gold) if on_gold else None
        estimated = aggregation.accuracy.get(who, 0.0)
        stats.append(
            AnnotatorStats(
                who,
                len(mine),
                len(on_gold),
                gold_accuracy,
                sum(others) / len(others) if others else None,
                estimated,
                estimated < min_accuracy,
            )
        )
    return stats


def review_state(root: DatasetRoot, config: ReviewConfig) -> ReviewState:
    """The root's annotations aggregated by ``[review] aggregation`` with the gold verdicts held,
    agreement and annotator quality."""
    rows = [r for r in annotation_rows(root) if r["verdict"] in VERDICTS]
    gold = gold_verdicts(root)
    aggregation = AGGREGATORS[config.aggregation](triples(rows), VERDICTS, gold)
    return ReviewState(
        rows,
        gold,
        aggregation,
        annotator_stats(rows, gold, aggregation, config.min_annotator_accuracy),
        krippendorff_alpha(triples(rows)),
        _alpha_by(rows, "decision_set"),
        _alpha_by(rows, "filter_reasons"),
    )


def annotators(root_path: str | Path, config: ReviewConfig) -> ReviewState:
    """``curate review annotators``: the root's review state."""
    return review_state(DatasetRoot(root_path), config)
