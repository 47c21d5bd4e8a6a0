"""Gold clips: clips whose verdict is known, mixed into the review queue to measure annotators
(``curate review gold``). A gold verdict is a decision of source ``gold``; it outranks every other
verdict of the clip.

Gold comes from the user (a CSV of ``clip_id,verdict`` lines) or from earlier confident reviews:
a review verdict at ``[review] gold_confidence`` or more, resting on ``annotators_per_clip`` or
more annotations.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from extractors.registry import dataset_schemas
from manifests.lock import hold
from manifests.store import DatasetRoot, new_key
from manifests.views import connect as connect_views
from review.annotators import VERDICTS, gold_verdicts
from review.client import ReviewError
from settings.config import ReviewConfig


def read_gold_file(path: Path) -> dict[str, str]:
    """clip_id -> verdict from a CSV of ``clip_id,verdict`` lines (a header line is allowed)."""
    try:
        lines = list(csv.reader(path.read_text().splitlines()))
    except OSError as exc:
        raise ReviewError(f"cannot read the gold file {path}: {exc.strerror}") from None
    gold = {}
    for n, line in enumerate(lines, 1):
        if not line or line[0].strip() in ("", "clip_id"):
            continue
        if len(line) != 2 or line[1].strip() not in VERDICTS:
            raise ReviewError(f"{path}:{n}: expected `clip_id,verdict` with verdict one of {VERDICTS}")
        gold[line[0].strip()] = line[1].strip()
    return gold


def confident_reviews(root: DatasetRoot, config: ReviewConfig) -> dict[str, str]:
    """clip_id -> verdict of the current review verdicts confident enough to serve as gold."""
    con = connect_views(root, dataset_schemas())
    rows = con.execute(
        """select clip_id, verdict from current_decisions
           where source = 'review' and confidence >= ? and annotators >= ?""",
        [config.gold_confidence, config.annotators_per_clip],
    ).fetchall()
    return dict(rows)


def add_gold(root_path: str | Path, verdicts: dict[str, str], who: str) -> int:
    """Append gold decisions for the clips of ``verdicts`` not already gold with that verdict;
    returns how many. Every clip must be a clip of the root."""
    root = DatasetRoot(root_path)
    con = connect_views(root, dataset_schemas())
    known = {c for (c,) in con.sql("select clip_id from clips").fetchall()}
    unknown = sorted(set(verdicts) - known)
    if unknown:
        raise ReviewError(
            f"{len(unknown)} gold clip(s) are not clips of {root.path}: {', '.join(unknown[:5])}"
        )
    already = gold_verdicts(root)
    new = {c: v for c, v in sorted(verdicts.items()) if already.get(c) != v}
    if not new:
        return 0
    set_id = "gold-" + new_key()
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "clip_id": c,
            "verdict": v,
            "reasons": [],
            "source": "gold",
            "who": who,
            "decided_at": now,
            "confidence": 1.0,
            "decision_set": set_id,
        }
        for c, v in new.items()
    ]
    with hold(root, set_id):
        root.write_part("decisions", set_id, rows, dataset_schemas()["decisions"])
    return len(rows)
