"""The judging of ``curate filter`` by parts: each job reads some of the root's ``clips`` parts a
batch of rows at a time, judges every clip with the thresholds and the twins already found, and
writes its decisions as one part of the decision set, not yet committed.

Jobs are independent and hold one batch of rows at a time (:data:`BATCH_ROWS`), so a root of
any size is judged in bounded memory, in this process or by Ray workers; :func:`curate.filter.apply_filters`
commits their parts together with one record once every job has finished, so a set is seen
whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from extractors.registry import dataset_schemas
from filters.rules import judge, rules
from manifests.store import DatasetRoot
from settings.config import FilterConfig

#: Rows of a clips part judged at once.
BATCH_ROWS = 65_536


def needed_columns(thresholds: FilterConfig) -> list[str]:
    """The ``clips`` columns a verdict reads: at millions of clips, turning every column into
    Python objects would take most of the time."""
    return list(
        dict.fromkeys(
            ["clip_id", "errors", "speech_language", *sorted({r.column for r in thresholds.active.values()})]
        )
    )


@dataclass(frozen=True)
class Stamp:
    """What every decision row of one set carries."""

    set_id: str
    decided_at: dt.datetime
    config_hash: str


@dataclass(frozen=True)
class JudgeJob:
    """Judge the clips parts ``rels`` of the root at ``root_uri`` and write the decisions as the
    file ``out`` (relative to the root). ``twins``: clip id -> (the clip kept in its place, why),
    from the near-duplicate pass."""

    root_uri: str
    rels: tuple[str, ...]
    out: str
    thresholds: FilterConfig
    twins: Mapping[str, tuple[str, str]]
    stamp: Stamp


@dataclass
class Judged:
    """What one job wrote: its part and the verdict and reason counts of its clips."""

    out: str
    clips: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


#: Runs :func:`judge_part` over jobs, results in any order: the builtin ``map`` or a cluster's.
JudgeMap = Callable[[Callable[[JudgeJob], Judged], Iterable[JudgeJob]], Iterable[Judged]]


def plan(
    root: DatasetRoot,
    rels: Sequence[str],
    thresholds: FilterConfig,
    twins: Mapping[str, tuple[str, str]],
    stamp: Stamp,
) -> list[JudgeJob]:
    """The jobs judging the clips parts ``rels``: ``thresholds.parts_per_job`` parts each, their
    decisions written as ``decisions/part-<set>-<n>.parquet``."""
    step = thresholds.parts_per_job
    return [
        JudgeJob(
            root.uri,
            tuple(rels[start : start + step]),
            f"decisions/part-{stamp.set_id}-{n:06d}.parquet",
            thresholds,
            twins,
            stamp,
        )
        for n, start in enumerate(range(0, len(rels), step))
    ]


def judge_part(job: JudgeJob) -> Judged:
    """Run ``job``: every clip of its parts judged (the duplicate rule by ``job.twins``) and the
    decisions written whole to ``job.out``."""
    root = DatasetRoot(job.root_uri)
    schema = dataset_schemas()["decisions"]
    judged = Judged(job.out)

    def write(path: Path) -> None:
        with pq.ParquetWriter(path, schema, write_page_checksum=True) as writer:
            for rows in _rows(root, job.rels, needed_columns(job.thresholds)):
                writer.write_table(decisions(rows, job, judged, schema))

    root.storage.write(job.out, write)
    return judged


def _rows(root: DatasetRoot, rels: Iterable[str], columns: Sequence[str]) -> Iterable[list[dict[str, Any]]]:
    """The rows of the parts ``rels``, ``columns`` only, a batch at a time; a column a part lacks
    (written before its extractor existed) is absent from its rows, which the rules read as null."""
    for rel in rels:
        file = root.parquet_file(rel)
        present = [c for c in columns if c in file.schema_arrow.names]
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=present):
            yield batch.to_pylist()


def decisions(rows: list[dict[str, Any]], job: JudgeJob, judged: Judged, schema: pa.Schema) -> pa.Table:
    """The decision rows of ``rows`` (counted into ``judged``), built by columns: a million row
    dicts would take most of the time."""
    twin = [job.twins.get(row["clip_id"]) for row in rows]
    made = rules(job.thresholds)
    verdicts = [
        judge({**row, "duplicate_of": t[0] if t else None}, job.thresholds, made)
        for row, t in zip(rows, twin, strict=True)
    ]
    judged.clips += len(rows)
    judged.verdicts.update(v.verdict for v in verdicts)
    judged.reasons.update(r for v in verdicts for r in v.reasons)
    n = len(rows)
    stamp = job.stamp
    columns = {
        "clip_id": [row["clip_id"] for row in rows],
        "verdict": [v.verdict for v in verdicts],
        "reasons": [v.reasons for v in verdicts],
        "source": ["filter"] * n,
        "who": ["curate filter"] * n,
        "decided_at": pa.array([stamp.decided_at] * n, schema.field("decided_at").type),
        "config_hash": [stamp.config_hash] * n,
        "duplicate_of": [t[0] if t else None for t in twin],
        "duplicate_why": [t[1] if t else None for t in twin],
        "decision_set": [stamp.set_id] * n,
    }
    return pa.Table.from_pydict({f.name: columns.get(f.name, [None] * n) for f in schema}, schema=schema)
