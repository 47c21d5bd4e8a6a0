"""``curate filter``: apply the thresholds to every clip of a dataset root, with no model run.

Near-duplicates are found here too, from the fingerprints stored in ``tracks`` through the
root's near-duplicate index (:func:`filters.duplicates.update`: each call indexes only the clips
the index lacks). The duplicate rule judges last: every clip is judged by the other rules first;
among clips without recorded failures, each group of twins keeps the copy with the best of those
verdicts (accept, then review, then reject), then the best source (audio sample rate, then face
size in pixels, then duration); the others carry ``duplicate_of`` and ``duplicate_why``. Every
call judges every clip again, so a better copy brought by a later run takes the place of one
accepted before (counted in the summary as ``replaced``).

The clips are judged by parts (:mod:`curate.filter_parts`), in this process or by Ray workers,
in bounded memory. Each call appends one decision set (``ROOT/decisions/part-<set_id>-<n>.parquet``,
a part per job, committed together); earlier sets stay readable, and ``current_decisions`` shows
the latest decision of each clip.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from duckdb import DuckDBPyConnection

from curate.filter_parts import Judged, JudgeJob, JudgeMap, Stamp, judge_part, needed_columns, plan
from curate.ray_executor import ray_map
from extractors.registry import dataset_schemas, in_effect, rules_off
from filters.duplicates import twin_groups, update
from filters.rules import Verdict, judge, rules
from manifests.lock import hold
from manifests.store import DatasetRoot, existing_root
from manifests.views import connect
from settings.config import Config, FilterConfig
from settings.errors import InvalidInput, NothingToWorkOn


class NoClips(NothingToWorkOn, RuntimeError):
    """The dataset root has no clips to judge."""


class UnknownColumn(InvalidInput, ValueError):
    """A rule names a column the clips table does not have."""


@dataclass(frozen=True)
class FilterSummary:
    decision_set: str
    config_hash: str
    verdicts: dict[str, int]  # verdict -> clips
    reasons: dict[str, int]  # reason -> clips
    rules_off: dict[str, str]  # rule -> the extractor, not in [run] extractors, that fills its column
    replaced: int = 0  # clips accepted before this set that are now duplicates of a better copy
    jobs_by_node: dict[str, int] = field(
        default_factory=dict
    )  # Ray node -> judging jobs it ran; {}: in process

    def to_text(self) -> str:
        lines = [f"decision set {self.decision_set} (thresholds {self.config_hash})"]
        lines += [
            f"  rule {rule} skipped: its column comes from {owner!r}, which is not in [run] extractors"
            for rule, owner in self.rules_off.items()
        ]
        lines += [f"  {v:<8}{self.verdicts.get(v, 0)}" for v in ("accept", "review", "reject")]
        if self.jobs_by_node:
            jobs = sum(self.jobs_by_node.values())
            lines.append(f"  judged by {jobs} job(s) on {len(self.jobs_by_node)} node(s)")
        if self.replaced:
            lines.append(f"  {self.replaced} clip(s) accepted before are now duplicates of a better copy")
        if self.reasons:
            lines.append("  reasons")
            lines += [f"    {r:<20}{n}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def check_rules(config: Config) -> None:
    """Raise :class:`UnknownColumn` when a rule names a column the clips table does not have, or
    one that holds no numbers (a threshold on text or lists means nothing)."""
    schema = dataset_schemas()["clips"]
    for name, rule in config.filter.active.items():
        if rule.column not in schema.names:
            raise UnknownColumn(f"rule {name!r}: the clips table has no column {rule.column!r}")
        kind = schema.field(rule.column).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise UnknownColumn(f"rule {name!r}: column {rule.column!r} holds {kind}, not numbers")


def apply_filters(root_path: str | Path, config: Config) -> FilterSummary:
    """Judge every clip of the root with ``config.filter`` (less the rules on columns of
    extractors the config does not run) and append the decisions as one set.

    The near-duplicate pass runs first, over the clips with fingerprints; then the clips are
    judged by parts (:mod:`curate.filter_parts`), ``[filter] parts_per_job`` parts a job: in this
    process when one job holds them all, else on the ``[run] executor`` (Ray workers when it is
    ray). The jobs' parts are committed together by one record, under the root's lock."""
    root = existing_root(root_path)
    schemas = dataset_schemas()
    check_rules(config)
    skipped = rules_off(config)
    thresholds = in_effect(config)
    now = dt.datetime.now(dt.UTC)
    set_id = now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    with hold(root, f"filter-{set_id}"):  # the index and the set's parts are written to the root
        snapshot = root.snapshot()
        con = connect(root, schemas, snapshot)
        ((clips,),) = con.sql("select count(*) from clips").fetchall()
        if not clips:
            raise NoClips(f"{root.uri} has no clips: run `curate run` first")
        twins = duplicates(con, root, set_id, thresholds)
        stamp = Stamp(set_id, now, thresholds.digest())
        jobs = plan(root, root.readable_rels("clips", snapshot, schemas["clips"]), thresholds, twins, stamp)
        on_ray = ray_map(config.ray) if len(jobs) > 1 and config.run.executor == "ray" else None
        judged = _judge_all(root, jobs, on_ray or map)
        root.record(set_id, {"decisions": [j.out.rsplit("/", 1)[-1] for j in judged]}, {})
    replaced = accepted_before(con, list(twins))
    verdicts: Counter[str] = sum((j.verdicts for j in judged), Counter())
    reasons: Counter[str] = sum((j.reasons for j in judged), Counter())
    nodes = dict(on_ray.nodes) if on_ray else {}
    return FilterSummary(set_id, stamp.config_hash, dict(verdicts), dict(reasons), skipped, replaced, nodes)


def _judge_all(root: DatasetRoot, jobs: list[JudgeJob], map_fn: JudgeMap) -> list[Judged]:
    """Run every job; when one fails, delete the parts the others wrote (no record names them)
    and raise."""
    try:
        return list(map_fn(judge_part, jobs))
    except BaseException:
        for job in jobs:
            root.storage.delete(job.out)
        raise


def accepted_before(con: DuckDBPyConnection, clip_ids: Sequence[str]) -> int:
    """How many of ``clip_ids`` the latest decision set before this one accepted."""
    if not clip_ids:
        return 0
    con.register("_twins", pa.table({"clip_id": pa.array(list(clip_ids), pa.string())}))
    ((found,),) = con.sql(
        "select count(*) from current_decisions join _twins using (clip_id) where verdict = 'accept'"
    ).fetchall()
    con.unregister("_twins")
    return int(found)


#: Order of the verdicts when twins are compared: the better verdict is kept.
VERDICT_RANK = {"reject": 0, "review": 1, "accept": 2}


def why_kept(kept: str, this: str, standing: dict[str, Verdict], source: dict[str, tuple[float, ...]]) -> str:
    """Why ``kept`` was kept in place of its twin ``this``, for ``duplicate_why``."""
    a, b = standing[kept], standing[this]
    if a.verdict != b.verdict:
        because = f"{b.verdict} ({', '.join(b.reasons)})" if b.reasons else b.verdict
        return f"kept the twin judged {a.verdict} by the other rules; this copy was judged {because}"
    sr, face, seconds = source[kept]
    return (
        f"both judged {a.verdict} by the other rules; kept the better source "
        f"(audio {sr:g} Hz, face {face:g} px, {seconds:.2f} s; this copy: "
        f"{source[this][0]:g} Hz, {source[this][1]:g} px, {source[this][2]:.2f} s)"
    )


def same_footage(a: tuple[str, float, float], b: tuple[str, float, float]) -> bool:
    """Whether two clips, each (video id, start, end in seconds), overlap in one video: a clip cut
    where its speaker changes and its parts (curate/speaker_cuts.py) are one footage, not twins."""
    return a[0] == b[0] and max(a[1], b[1]) < min(a[2], b[2])


def duplicates(
    con: DuckDBPyConnection,
    root: DatasetRoot,
    part: str,
    thresholds: FilterConfig,
) -> dict[str, tuple[str, str]]:
    """Clip id -> (the clip kept in its place, why), over clips without recorded failures.

    Each clip with a fingerprint is judged by every rule but the duplicate one (``thresholds``);
    of each group of twins the best of those verdicts is kept, then the best source. The root's near-duplicate index is
    brought up to date first (only clips it lacks are fingerprint-read and indexed, as part
    ``part``, its collisions counted within ``thresholds.duplicate_memory_mb``), so a clip added since
    is checked against every clip curated before it. Call while holding the root's lock.
    """
    verdict_columns = ", ".join(f'c."{c}"' for c in needed_columns(thresholds))
    rows: list[dict[str, Any]] = (
        con.sql(
            f"""select {verdict_columns}, v.audio_sr_hz, c.quality_face_px as face_px, c.duration_s as seconds,
                  c.video_id as _video, c.start_s as _start, c.end_s as _end
           from clips c join tracks t using (clip_id) join videos v on v.video_id = c.video_id
           where cardinality(c.errors) = 0 and t.audio_fingerprint is not null"""
        )
        .to_arrow_table()
        .to_pylist()
    )
    made = rules(thresholds)
    standing = {r["clip_id"]: judge(r, thresholds, made) for r in rows}
    source: dict[str, tuple[float, ...]] = {
        r["clip_id"]: (r["audio_sr_hz"] or 0, r["face_px"] or 0, r["seconds"] or 0) for r in rows
    }
    rank = {clip: (VERDICT_RANK[standing[clip].verdict], *values) for clip, values in source.items()}

    def fetch(ids: Sequence[str]) -> dict[str, np.ndarray]:
        con.register("_wanted", pa.table({"clip_id": pa.array(list(ids), pa.string())}))
        found = con.sql(
            "select clip_id, audio_fingerprint from tracks join _wanted using (clip_id)"
        ).to_arrow_table()
        con.unregister("_wanted")
        return {
            c: np.asarray(p, np.uint32)
            for c, p in zip(
                found.column("clip_id").to_pylist(),
                found.column("audio_fingerprint").to_pylist(),
                strict=True,
            )
        }

    span = {r["clip_id"]: (r["_video"], r["_start"], r["_end"]) for r in rows}
    pairs = [
        (a, b, error)
        for a, b, error in update(
            root, sorted(rank), fetch, part, memory_mb=thresholds.duplicate_memory_mb
        ).pairs
        if not same_footage(span[a], span[b])
    ]
    return {
        clip: (kept, why_kept(kept, clip, standing, source))
        for clip, (kept, _) in twin_groups(
            pairs, rank.__getitem__, thresholds.duplicate_max_bit_error
        ).items()
    }
