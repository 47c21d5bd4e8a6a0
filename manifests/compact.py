"""``curate compact``: merge a root's small parts into large ones while readers keep reading.

Runs commit a part per table per batch (:mod:`manifests.batch`), a hundred clips or so; a root
of millions of clips would hold tens of thousands of files. Compaction groups the batches whose
``clips`` part is under ``target_clips`` rows into groups of about that many clips, writes one
``clips``, one ``tracks`` and one ``videos`` part per group (a clip stays in the same part key as
its tracks), then commits them with the removal of their sources in one commit record: a reader
sees every row once, from the old parts or the new. Other tables (``decisions``, ``inputs``,
indexes) merge their small parts the same way, by rows. A checkpoint then folds the commit
records in, so readers list a few files.

The removed parts stay on disk for :data:`COMPACTED_GRACE_S`, for readers that took their
snapshot before the commit; the next compaction or run deletes them (``grace_s=0`` at once,
when no reader is running). Killed at any point, compaction leaves the root as it was or as it
would be, plus unrecorded files the next run or compaction sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.lock import hold
from manifests.store import BATCH_TABLES, DatasetRoot, Snapshot, existing_root, new_key, part_key

#: Seconds a compacted-away part stays on disk for readers that started before the compaction.
COMPACTED_GRACE_S = 600.0
#: Clips per merged batch part (a clip's tracks are about 0.1 MB: 500 MB of tracks per part).
TARGET_CLIPS = 5000
#: Rows per merged part of the other tables (decision sets, inputs, indexes).
TARGET_ROWS = 2_000_000
#: Rows per row group of a merged part, per table: tracks rows are large.
ROW_GROUP_ROWS = {"tracks": 256}


@dataclass
class CompactReport:
    root: str
    files_before: dict[str, int]  # table -> live parts
    files_after: dict[str, int] = field(default_factory=dict)
    merged: int = 0  # parts merged away
    deleted: int = 0  # files deleted from disk (earlier compactions' leftovers, unrecorded files)
    folded: int = 0  # commit records folded into the checkpoint
    seconds: float = 0.0

    def to_text(self) -> str:
        lines = [f"compact {self.root} in {self.seconds:.1f} s"]
        for table, before in sorted(self.files_before.items()):
            lines.append(f"  {table:<12} {before:>7} parts -> {self.files_after.get(table, 0)}")
        lines.append(
            f"  {self.merged} parts merged, {self.folded} commit records folded, {self.deleted} files deleted"
        )
        return "\n".join(lines)


def _rows(root: DatasetRoot, rel: str) -> int:
    return int(root.parquet_file(rel).metadata.num_rows)


def plan_groups(sizes: Sequence[tuple[str, int]], target: int) -> list[list[str]]:
    """Consecutive keys whose sizes are under ``target``, grouped up to about ``target`` each;
    a last key left alone joins the group before it (a small part is not left behind because the
    groups before it came out exactly full), and a group of one is left out (nothing to merge)."""
    groups: list[list[str]] = []
    current: list[str] = []
    total = 0
    for key, size in sizes:
        if size >= target:
            continue
        current.append(key)
        total += size
        if total >= target:
            groups.append(current)
            current, total = [], 0
    if len(current) == 1 and groups:
        groups[-1].extend(current)
    else:
        groups.append(current)
    return [g for g in groups if len(g) > 1]


def merge_parts(root: DatasetRoot, sources: Sequence[str], target: str, row_group_rows: int) -> None:
    """Write the rows of the parts ``sources`` (in order; paths relative to the root) to
    ``target`` whole (a temporary file and a rename, or one upload), holding one row group at a
    time. Columns a source lacks (written before its extractor existed) are null."""
    schema = pa.unify_schemas([root.parquet_file(p).schema_arrow for p in sources], promote_options="default")

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema, compression="zstd", write_page_checksum=True) as writer:
            held: list[pa.Table] = []
            rows = 0
            for source in sources:
                for batch in root.parquet_file(source).iter_batches(batch_size=row_group_rows):
                    held.append(pa.Table.from_batches([batch]))
                    rows += batch.num_rows
                    if rows >= row_group_rows:
                        writer.write_table(_conform(held, schema))
                        held, rows = [], 0
            if held:
                writer.write_table(_conform(held, schema))

    root.write_parquet(target, write)


def _conform(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables, promote_options="default").select(schema.names).cast(schema)


def compact(
    path: str | Path,
    target_clips: int = TARGET_CLIPS,
    target_rows: int = TARGET_ROWS,
    grace_s: float = COMPACTED_GRACE_S,
    schemas: Mapping[str, pa.Schema] | None = None,
) -> CompactReport:
    """Merge the small parts of every table of the root at ``path`` (a folder or an object-store
    URL; holding its lock: raises :class:`~manifests.lock.RootBusy` while a run writes it) and
    fold the commit records. Damaged parts (and, given the tables' ``schemas``, parts of another
    schema) are left where they are, for `curate check --repair`."""
    root = DatasetRoot(path)
    existing_root(root.uri)
    started = time.perf_counter()
    with hold(root, "compact-" + time.strftime("%Y%m%dT%H%M%S")):
        root.adopt_legacy()
        snap = root.snapshot()
        report = CompactReport(root.uri, {t: len(f) for t, f in snap.live.items() if f})
        add: dict[str, list[str]] = {}
        remove: dict[str, list[str]] = {}
        key = new_key()

        def merge(table: str, keys: Sequence[str], into: str) -> None:
            names = [f"part-{k}.parquet" for k in keys if f"part-{k}.parquet" in snap.files(table)]
            if not names:
                return
            sources = [f"{table}/{name}" for name in names]
            merge_parts(root, sources, f"{table}/part-{into}.parquet", ROW_GROUP_ROWS.get(table, 65536))
            add.setdefault(table, []).append(f"part-{into}.parquet")
            remove.setdefault(table, []).extend(names)

        # Batches: a key's clips, tracks and videos parts move together, so clips keep their tracks.
        whole = [
            k for k in _keys(snap.files("clips") | snap.files("videos")) if _undamaged(root, k, snap, schemas)
        ]
        sizes = [(k, _batch_rows(root, k, snap.files("clips"))) for k in whole]
        for n, group in enumerate(plan_groups(sizes, target_clips)):
            for table in BATCH_TABLES:
                merge(table, group, f"{key}-{n:05d}")
        for table in sorted(set(snap.live) - set(BATCH_TABLES)):
            parts = root.readable_rels(table, snap, (schemas or {}).get(table))
            for n, group in enumerate(
                plan_groups([(part_key(p), _rows(root, p)) for p in parts], target_rows)
            ):
                merge(table, group, f"{key}-{n:05d}")
        if add:
            root.record(key, add, remove)
            report.merged = sum(len(f) for f in remove.values())
        after = root.snapshot()
        report.folded = root.checkpoint(after)
        report.deleted = root.sweep(older_than_s=grace_s)
        report.files_after = {t: len(f) for t, f in after.live.items() if f}
    report.seconds = time.perf_counter() - started
    return report


def _keys(files: set[str]) -> list[str]:
    return sorted({name[len("part-") : -len(".parquet")] for name in files})


def _undamaged(root: DatasetRoot, key: str, snap: Snapshot, schemas: Mapping[str, pa.Schema] | None) -> bool:
    name = f"part-{key}.parquet"
    return all(
        root.part_problem(f"{t}/{name}", schemas[t]) is None if schemas else root.is_complete(f"{t}/{name}")
        for t in BATCH_TABLES
        if name in snap.files(t)
    )


def _batch_rows(root: DatasetRoot, key: str, clip_files: set[str]) -> int:
    """The batch's clips (its videos rows when it has no clips part)."""
    table = "clips" if f"part-{key}.parquet" in clip_files else "videos"
    return _rows(root, f"{table}/part-{key}.parquet")
