"""``curate filter``: apply the thresholds to every clip of a dataset root, with no model run.

Each call appends one decision set (``ROOT/decisions/part-<set_id>.parquet``); earlier sets stay
readable, and ``current_decisions`` shows the latest decision of each clip.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from curate.config import Config
from extractors.registry import dataset_schemas
from filters.rules import judge
from manifests.lock import hold
from manifests.store import DatasetRoot
from manifests.views import connect


class NoClips(RuntimeError):
    """The dataset root has no clips to judge."""


class UnknownColumn(ValueError):
    """A rule names a column the clips table does not have."""


@dataclass(frozen=True)
class FilterSummary:
    decision_set: str
    config_hash: str
    verdicts: dict[str, int]  # verdict -> clips
    reasons: dict[str, int]  # reason -> clips

    def to_text(self) -> str:
        lines = [f"decision set {self.decision_set} (thresholds {self.config_hash})"]
        lines += [f"  {v:<8}{self.verdicts.get(v, 0)}" for v in ("accept", "review", "reject")]
        if self.reasons:
            lines.append("  reasons")
            lines += [f"    {r:<20}{n}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def apply_filters(root_path: str | Path, config: Config) -> FilterSummary:
    """Judge every clip of the root with ``config.filter`` and append the decisions as one set."""
    root = DatasetRoot(root_path)
    schemas = dataset_schemas()
    clip_columns = set(schemas["clips"].names)
    for name, rule in config.filter.active.items():
        if rule.column not in clip_columns:
            raise UnknownColumn(f"rule {name!r}: the clips table has no column {rule.column!r}")
    rows = connect(root, schemas).sql("select * from clips order by clip_id").to_arrow_table().to_pylist()
    if not rows:
        raise NoClips(f"{root.path} has no clips: run `curate run` first")
    now = dt.datetime.now(dt.UTC)
    set_id = now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    digest = config.filter.digest()
    decisions = []
    for row in rows:
        verdict = judge(row, config.filter)
        decisions.append(
            {
                "clip_id": row["clip_id"],
                "verdict": verdict.verdict,
                "reasons": verdict.reasons,
                "source": "filter",
                "who": "curate filter",
                "decided_at": now,
                "config_hash": digest,
                "decision_set": set_id,
            }
        )
    with hold(root, f"filter-{set_id}"):
        root.write_part("decisions", set_id, decisions, schemas["decisions"])
    reasons = Counter(r for d in decisions for r in d["reasons"])
    return FilterSummary(set_id, digest, dict(Counter(d["verdict"] for d in decisions)), dict(reasons))
