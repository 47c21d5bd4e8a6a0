"""``curate review pull``: reviewers' verdicts from Label Studio into the decisions log.

Every annotation becomes one decision row (source ``review``, who = the annotator's email, at =
the annotation's last update), with the reasons, emotion and sync offset the reviewer chose.
An annotation already pulled at the same update time is skipped, so pulling again appends
nothing; an edited annotation is pulled again and, being later, supersedes. A reviewer's
verdict outranks filter runs in ``current_decisions``, so exports see it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractors.registry import dataset_schemas
from manifests.lock import hold
from manifests.store import DatasetRoot
from manifests.views import connect as connect_views
from review.client import LabelStudio, ReviewError
from review.project import find_project


@dataclass(frozen=True)
class PullSummary:
    decision_set: str | None
    pulled: int
    already: int
    verdicts: dict[str, int]

    def to_text(self) -> str:
        counts = ", ".join(f"{v} {n}" for v, n in sorted(self.verdicts.items())) or "none"
        return f"{self.pulled} annotation(s) pulled ({counts}), {self.already} already in the log" + (
            f"; decision set {self.decision_set}" if self.decision_set else ""
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
    """The decision row of one annotation; ``None`` when it has no verdict (skipped or cancelled)."""
    result = annotation.get("result") or []
    verdict = choices(result, "verdict")
    if annotation.get("was_cancelled") or not verdict:
        return None
    emotion = choices(result, "emotion")
    return {
        "clip_id": clip_id,
        "verdict": verdict[0],
        "reasons": choices(result, "reasons"),
        "source": "review",
        "who": who,
        "decided_at": dt.datetime.fromisoformat(annotation["updated_at"].replace("Z", "+00:00")),
        "config_hash": None,
        "duplicate_of": None,
        "emotion": emotion[0] if emotion else None,
        "sync_offset_frames": number(result, "sync_offset"),
        "annotation": f"{annotation['id']}@{annotation['updated_at']}",
        "decision_set": set_id,
    }


def pull(root_path: str | Path, client: LabelStudio, project_title: str) -> PullSummary:
    """Append every new or updated annotation of the project as a review decision."""
    root = DatasetRoot(root_path)
    schemas = dataset_schemas()
    project = find_project(client, project_title)
    if project is None:
        raise ReviewError(f"Label Studio has no project {project_title!r}: run `curate review push` first")
    emails = {u["id"]: u["email"] for u in client.users()}
    pulled = connect_views(root, schemas).sql("select annotation from decisions where annotation is not null")
    seen = {annotation for (annotation,) in pulled.fetchall()}
    set_id = "review-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    rows, already = [], 0
    for task in client.tasks(int(project["id"])):
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
    if rows:
        with hold(root, set_id):
            root.write_part("decisions", set_id, rows, schemas["decisions"])
    return PullSummary(
        set_id if rows else None, len(rows), already, dict(Counter(r["verdict"] for r in rows))
    )
