"""``curate review pull``: annotators' verdicts from Label Studio into the decisions log, and one
verdict per clip made from them.

1. Every annotation becomes one decision row of source ``annotation``, as given (who = the
   annotator's email, at = the annotation's last update, with the reasons, emotion and sync
   offset chosen). An annotation already pulled at the same update time is skipped; an edited one
   is pulled again and, being later, supersedes.
2. Every clip's annotations are aggregated (``[review] aggregation``: Dawid–Skene weighted by
   annotator quality, or majority vote) into a decision of source ``review`` with its
   ``confidence`` and the number of ``annotators``; it is appended only when it changed, so
   pulling again appends nothing. Gold clips keep their known verdict.
3. A clip whose annotators disagree (or whose verdict is less certain than ``[review]
   agree_confidence``) goes back to the queue for one more annotator (the task's overlap raised),
   up to ``[review] max_annotators``.

The review verdict outranks filter runs in ``current_decisions``, so exports see it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractors.registry import dataset_schemas
from manifests.lock import hold
from manifests.store import DatasetRoot, new_key
from manifests.views import connect as connect_views
from review.aggregate import disagree
from review.annotators import ReviewState, review_state
from review.client import LabelStudio, ReviewError
from review.project import find_project
from settings.config import ReviewConfig


@dataclass(frozen=True)
class PullSummary:
    decision_set: str | None
    pulled: int
    already: int
    verdicts: dict[str, int]  # of the review verdicts that changed
    requeued: int
    state: ReviewState

    def to_text(self) -> str:
        counts = ", ".join(f"{v} {n}" for v, n in sorted(self.verdicts.items())) or "none changed"
        alpha = "-" if self.state.alpha is None else f"{self.state.alpha:.2f}"
        flagged = [a.who for a in self.state.annotators if a.flagged]
        return (
            f"{self.pulled} annotation(s) pulled, {self.already} already in the log; clip verdicts: {counts}; "
            f"{self.requeued} clip(s) sent back for one more annotator; Krippendorff's alpha {alpha}"
            + (f"; flagged annotators: {', '.join(flagged)}" if flagged else "")
            + (f"; decision set {self.decision_set}" if self.decision_set else "")
        )


def choices(result: list[dict[str, Any]], name: str) -> list[str]:
    for item in result:
        if item.get("from_name") == name and item.get("type") == "choices":
            return list(item["value"].get("choices", []))
    return []


def number(result: list[dict[str, Any]], name: str) -> int | None:
    for item in result:
        if item.get("from_name") == name and item.get("type") == "number":
            return int(item["value"]["number"])
    return None


def decision(clip_id: str, annotation: dict[str, Any], who: str, set_id: str) -> dict[str, Any] | None:
    """The annotation row of one annotation; ``None`` when it has no verdict (skipped or cancelled)."""
    result = annotation.get("result") or []
    verdict = choices(result, "verdict")
    if annotation.get("was_cancelled") or not verdict:
        return None
    emotion = choices(result, "emotion")
    return {
        "clip_id": clip_id,
        "verdict": verdict[0],
        "reasons": choices(result, "reasons"),
        "source": "annotation",
        "who": who,
        "decided_at": dt.datetime.fromisoformat(annotation["updated_at"].replace("Z", "+00:00")),
        "emotion": emotion[0] if emotion else None,
        "sync_offset_frames": number(result, "sync_offset"),
        "annotation": f"{annotation['id']}@{annotation['updated_at']}",
        "decision_set": set_id,
    }


def _review_rows(state: ReviewState, root: DatasetRoot, set_id: str) -> list[dict[str, Any]]:
    """A review decision for each clip whose aggregate verdict differs from its latest one; the
    reasons, emotion and offset are those of the annotators who chose the verdict."""
    con = connect_views(root, dataset_schemas())
    latest = {
        clip: (verdict, confidence, n)
        for clip, verdict, confidence, n in con.sql(
            """select clip_id, arg_max(verdict, decided_at), arg_max(confidence, decided_at),
                      arg_max(annotators, decided_at)
               from decisions where source = 'review' and annotation is null group by clip_id"""
        ).fetchall()
    }
    now = dt.datetime.now(dt.UTC)
    by_clip = state.by_clip()
    rows = []
    for clip, agg in sorted(state.aggregation.items.items()):
        if clip in state.gold or latest.get(clip) == (agg.label, round(agg.confidence, 4), agg.annotations):
            continue
        backing = [r for r in by_clip[clip] if r["verdict"] == agg.label]
        emotions = Counter(r["emotion"] for r in backing if r["emotion"])
        offsets = [r["sync_offset_frames"] for r in backing if r["sync_offset_frames"] is not None]
        rows.append(
            {
                "clip_id": clip,
                "verdict": agg.label,
                "reasons": sorted({reason for r in backing for reason in r["reasons"] or []}),
                "source": "review",
                "who": state.aggregation.method,
                "decided_at": now,
                "emotion": emotions.most_common(1)[0][0] if emotions else None,
                "sync_offset_frames": round(statistics.median(offsets)) if offsets else None,
                "confidence": round(agg.confidence, 4),
                "annotators": agg.annotations,
                "decision_set": set_id,
            }
        )
    return rows


def _requeue(
    client: LabelStudio, tasks: list[dict[str, Any]], state: ReviewState, config: ReviewConfig
) -> int:
    """Raise the overlap of each task whose annotators disagree (:func:`review.aggregate.disagree`)
    by one, up to max_annotators."""
    by_clip = state.by_clip()
    requeued = 0
    for task in tasks:
        clip = task["data"]["clip_id"]
        agg = state.aggregation.items.get(clip)
        if agg is None or clip in state.gold:
            continue
        if not disagree({r["verdict"] for r in by_clip[clip]}, agg, config.agree_confidence):
            continue
        wanted = agg.annotations + 1
        if wanted <= config.max_annotators and int(task.get("overlap") or 1) < wanted:
            client.set_overlap(int(task["id"]), wanted)
            requeued += 1
    return requeued


def pull(root_path: str | Path, client: LabelStudio, config: ReviewConfig) -> PullSummary:
    """Append every new or updated annotation of the project, and the clip verdicts they change."""
    root = DatasetRoot(root_path)
    schemas = dataset_schemas()
    project = find_project(client, config.project)
    if project is None:
        raise ReviewError(f"Label Studio has no project {config.project!r}: run `curate review push` first")
    emails = {u["id"]: u["email"] for u in client.users()}
    pulled = connect_views(root, schemas).sql("select annotation from decisions where annotation is not null")
    seen = {annotation for (annotation,) in pulled.fetchall()}
    set_id = "review-" + new_key()
    tasks = list(client.tasks(int(project["id"])))
    rows, already = [], 0
    for task in tasks:
        for annotation in task.get("annotations") or []:
            row = decision(
                task["data"]["clip_id"],
                annotation,
                emails.get(annotation.get("completed_by"), "unknown"),
                set_id,
            )
            if row is None:
                continue
            if row["annotation"] in seen:
                already += 1
            else:
                rows.append(row)
    with hold(root, set_id):
        if rows:
            root.write_part("decisions", f"{set_id}-annotations", rows, schemas["decisions"])
        state = review_state(root, config)
        verdicts = _review_rows(state, root, set_id)
        if verdicts:
            root.write_part("decisions", set_id, verdicts, schemas["decisions"])
    requeued = _requeue(client, tasks, state, config)
    return PullSummary(
        set_id if rows or verdicts else None,
        len(rows),
        already,
        dict(Counter(r["verdict"] for r in verdicts)),
        requeued,
        state,
    )
