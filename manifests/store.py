"""A dataset root on disk: Parquet parts per table, made visible by commit records.

Layout::

    ROOT/<table>/part-<key>.parquet     immutable data files; a run writes one per batch of clips
    ROOT/_log/<ns>-<key>.json           commit records: the files each commit adds (and removes)
    ROOT/_log/_checkpoint-<ns>.json     the live files as of a compaction, and the records it folds in
    ROOT/runs/<run_id>.json             run summaries
    ROOT/logs/<run_id>.log              tracebacks of the failures a run recorded
    ROOT/_quarantine/<table>/           damaged parts moved aside (``curate check --repair``, run start)
    ROOT/.lock                          held by the run writing the root (manifests.lock)

A commit writes its data files first (each through a temporary file and a rename), then one
commit record naming them: the record is the commit point, so the files of one commit (a batch's
``clips``, ``tracks`` and ``videos`` parts) become visible together or not at all. Readers take a
snapshot (:meth:`DatasetRoot.snapshot`: the latest checkpoint plus the records it did not fold
in, adds minus removes) and read only the files it names; a file a killed writer left without a
record is invisible and the next run sweeps it. Compaction (:mod:`manifests.compact`) merges
files and commits the merged ones with the removal of their sources in one record, so a reader
sees the rows before or after, never twice. A root written before commit records existed (one
part per clip, no ``_log``) is read by listing its parts and adopted by its first commit.

A part damaged after its commit (a truncated copy, a bad disk) is one that does not start and end
with Parquet's magic bytes: readers leave it out, and :meth:`DatasetRoot.repair` moves it aside
with the other parts of its batch so that a run redoes that batch's clips.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

LOG = "_log"
CHECKPOINT = "_checkpoint-"
#: Tables whose parts of one batch share a key: a clip is committed with its tracks and its video.
BATCH_TABLES = ("clips", "tracks", "videos")


class SchemaMismatch(ValueError):
    """Records do not agree with the table schema they are written with."""


def records_to_table(records: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table from row dicts, refusing keys the schema does not declare.

    Missing keys become nulls (and fail for non-nullable columns); pyarrow alone would drop
    unknown keys silently, hiding a column that an extractor forgot to declare.
    """
    names = set(schema.names)
    for i, rec in enumerate(records):
        unknown = set(rec) - names
        if unknown:
            raise SchemaMismatch(
                f"row {i} has columns not in the {schema.metadata!r} schema: {sorted(unknown)}"
            )
    try:
        table = pa.Table.from_pylist(list(records), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatch(str(exc)) from exc
    table.validate(full=True)
    for f in schema:
        if not f.nullable and table.column(f.name).null_count:
            raise SchemaMismatch(f"column {f.name!r} must not be null")
    return table


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, fsync it and rename it to ``path``: readers
    see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_parquet_atomic(table: pa.Table, path: Path, row_group_size: int | None = None) -> Path:
    """Write ``table`` to ``path`` through a temporary file and an atomic rename."""
    return atomic_write(
        path, lambda tmp: pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")
    )


PARQUET_MAGIC = b"PAR1"


def is_complete_parquet(path: Path) -> bool:
    """Whether ``path`` starts and ends with Parquet's magic bytes (a truncated or overwritten
    part does not); two 4-byte reads, no parsing."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0, os.SEEK_END)
            if fh.tell() < 12:
                return False
            fh.seek(-4, os.SEEK_END)
            return head == PARQUET_MAGIC and fh.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def new_key() -> str:
    """A part key no other writer picks: the time to the second, then 12 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]


def part_key(path: Path) -> str:
    return path.name[len("part-") : -len(".parquet")]


@dataclass
class Snapshot:
    """The live files of every table at one moment (file names relative to the table's folder)."""

    live: dict[str, set[str]] = field(default_factory=dict)
    removed: dict[str, float] = field(default_factory=dict)  # "table/file" -> when a commit removed it
    records: list[str] = field(default_factory=list)  # the commit records not folded into a checkpoint
    logged: bool = True  # False for a root written before commit records

    def files(self, table: str) -> set[str]:
        return self.live.get(table, set())


@dataclass
class Committed:
    """What a run may skip, from one snapshot: the committed clips, videos and finished videos."""

    clips: set[str]  # looked up by the driver only: not shipped to workers (see __getstate__)
    videos: set[str]  # videos with a committed row
    done_videos: set[str]  # ... whose every planned clip is committed too

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "clips": set()}


class DatasetRoot:
    """The Parquet tables of one curation dataset."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    # -- files -------------------------------------------------------------------------------

    def table_dir(self, table: str) -> Path:
        return self.path / table

    def part_path(self, table: str, key: str) -> Path:
        return self.table_dir(table) / f"part-{key}.parquet"

    @property
    def log_dir(self) -> Path:
        return self.path / LOG

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The live files of every table: the latest checkpoint, plus the adds of the commit
        records it did not fold in, minus their removes. Retried when a compaction deletes the
        records being read."""
        if not self.log_dir.is_dir():
            return self._legacy_snapshot()
        for _ in range(20):
            try:
                return self._read_log()
            except FileNotFoundError:
                time.sleep(0.05)
        return self._read_log()

    def _read_log(self) -> Snapshot:
        names = sorted(n for n in os.listdir(self.log_dir) if n.endswith(".json") and not n.startswith("."))
        checkpoints = [n for n in names if n.startswith(CHECKPOINT)]
        snap = Snapshot()
        folded: set[str] = set()
        if checkpoints:
            point = json.loads((self.log_dir / checkpoints[-1]).read_text())
            snap.live = {t: set(files) for t, files in point["live"].items()}
            snap.removed = dict(point.get("removed", {}))
            folded = set(point["folded"])
        removes: list[tuple[str, str, float]] = []
        for name in names:
            if name.startswith(CHECKPOINT) or name in folded:
                continue
            record = json.loads((self.log_dir / name).read_text())
            snap.records.append(name)
            for table, files in record.get("add", {}).items():
                snap.live.setdefault(table, set()).update(files)
            removes += [(t, f, record["at"]) for t, files in record.get("remove", {}).items() for f in files]
        for table, file, at in removes:
            snap.live.get(table, set()).discard(file)
            snap.removed[f"{table}/{file}"] = at
        return snap

    def _legacy_snapshot(self) -> Snapshot:
        snap = Snapshot(logged=False)
        if self.path.is_dir():
            for folder in self.path.iterdir():
                if folder.is_dir() and not folder.name.startswith(("_", ".")):
                    parts = {p.name for p in folder.glob("part-*.parquet")}
                    if parts:
                        snap.live[folder.name] = parts
        return snap

    def parts(self, table: str, snapshot: Snapshot | None = None) -> list[Path]:
        """The live files of ``table`` (from ``snapshot``, else a fresh one), sorted."""
        snap = snapshot or self.snapshot()
        return sorted(self.table_dir(table) / name for name in snap.files(table))

    def damaged_parts(self, table: str, snapshot: Snapshot | None = None) -> list[Path]:
        """Live files of ``table`` that are not complete Parquet files."""
        return [p for p in self.parts(table, snapshot) if not is_complete_parquet(p)]

    def readable_parts(self, table: str, snapshot: Snapshot | None = None) -> list[Path]:
        return [p for p in self.parts(table, snapshot) if is_complete_parquet(p)]

    def read_table(
        self, table: str, columns: Sequence[str] | None = None, snapshot: Snapshot | None = None
    ) -> pa.Table | None:
        """Every live, undamaged row of ``table`` (only ``columns`` when given); ``None`` when
        the table has no parts."""
        parts = self.readable_parts(table, snapshot)
        if not parts:
            return None
        return pa.concat_tables(
            [pq.read_table(p, columns=list(columns) if columns else None) for p in parts],
            promote_options="default",
        )

    def committed(self) -> Committed:
        """The clips and videos a run skips. A clip is committed when it is in an undamaged
        ``clips`` part whose batch's ``tracks`` part is live and undamaged; a video is done
        when its row is committed and so are as many of its clips as it planned."""
        snap = self.snapshot()
        tracks = {part_key(p) for p in self.readable_parts("tracks", snap)}
        clips: set[str] = set()
        per_video: dict[str, int] = {}
        for part in self.readable_parts("clips", snap):
            if part_key(part) in tracks:
                rows = pq.read_table(part, columns=["clip_id", "video_id"])
                for clip, video in zip(
                    rows["clip_id"].to_pylist(), rows["video_id"].to_pylist(), strict=True
                ):
                    if clip not in clips:
                        clips.add(clip)
                        per_video[video] = per_video.get(video, 0) + 1
        videos: set[str] = set()
        done: set[str] = set()
        for part in self.readable_parts("videos", snap):
            rows = pq.read_table(part, columns=["video_id", "n_clips"])
            for video, planned in zip(rows["video_id"].to_pylist(), rows["n_clips"].to_pylist(), strict=True):
                videos.add(video)
                if per_video.get(video, 0) >= (planned or 0):
                    done.add(video)
        return Committed(clips, videos, done)

    # -- writing -----------------------------------------------------------------------------

    def commit(
        self,
        tables: Mapping[str, pa.Table],
        key: str | None = None,
        remove: Mapping[str, Iterable[str]] | None = None,
    ) -> str:
        """Write each of ``tables`` as its part ``key`` (a new key when None), then one commit
        record adding them (and removing the files named in ``remove``, table -> file names).
        Returns the key. Nothing is visible to readers until the record is written."""
        key = key or new_key()
        self.adopt_legacy()
        added = {t: [write_parquet_atomic(data, self.part_path(t, key)).name] for t, data in tables.items()}
        self.record(key, added, remove or {})
        return key

    def record(self, key: str, add: Mapping[str, Iterable[str]], remove: Mapping[str, Iterable[str]]) -> None:
        """Write the commit record that makes the files ``add`` names live and those ``remove``
        names dead (table -> file names in the table's folder), in one step."""
        record = {
            "at": time.time(),
            "add": {t: sorted(files) for t, files in add.items()},
            "remove": {t: sorted(files) for t, files in remove.items()},
        }
        self._write_record(f"{time.time_ns():020d}-{key}.json", record)

    def checkpoint(self, snapshot: Snapshot) -> int:
        """Write ``snapshot`` (taken while holding the lock) as the checkpoint that readers start
        from, then delete the records it folds in and older checkpoints. Returns the records
        folded. Files removed by a commit are remembered until they are gone from disk."""
        removed = {name: at for name, at in snapshot.removed.items() if (self.path / name).exists()}
        point = {
            "at": time.time(),
            "live": {t: sorted(files) for t, files in snapshot.live.items() if files},
            "removed": removed,
            "folded": snapshot.records,
        }
        name = f"{CHECKPOINT}{time.time_ns():020d}.json"
        self._write_record(name, point)
        for record in snapshot.records:
            (self.log_dir / record).unlink(missing_ok=True)
        for older in self.log_dir.glob(f"{CHECKPOINT}*.json"):
            if older.name != name:
                older.unlink(missing_ok=True)
        return len(snapshot.records)

    def _write_record(self, name: str, record: Mapping[str, Any]) -> None:
        atomic_write(self.log_dir / name, lambda tmp: tmp.write_text(json.dumps(record)))

    def adopt_legacy(self) -> None:
        """Give a root written before commit records its first record, naming the parts it
        holds, so that they stay visible once records exist."""
        if self.log_dir.is_dir():
            return
        legacy = self._legacy_snapshot()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if legacy.live:
            record = {"at": time.time(), "add": {t: sorted(f) for t, f in legacy.live.items()}, "remove": {}}
            self._write_record(f"{0:020d}-adopted.json", record)

    def write_part(
        self, table: str, key: str, records: Sequence[Mapping[str, Any]], schema: pa.Schema
    ) -> Path:
        """Validate ``records`` against ``schema`` and commit them as the part ``key`` of ``table``."""
        self.commit({table: records_to_table(records, schema)}, key)
        return self.part_path(table, key)

    def write_table(self, table: str, key: str, data: pa.Table) -> Path:
        """Commit an Arrow table as the part ``key`` of ``table`` (for tables kept by the project
        itself, such as indexes, whose rows are built as columns rather than dicts)."""
        self.commit({table: data}, key)
        return self.part_path(table, key)

    # -- upkeep (only while holding the lock) -------------------------------------------------

    def repair(self) -> list[tuple[Path, Path]]:
        """Move every damaged live part aside into ``_quarantine/``, with the other parts of its
        batch (``clips``, ``tracks``, ``videos`` of the same key), and commit their removal, so
        that the next run recomputes that batch's clips. Returns (from, to) for every file moved."""
        snap = self.snapshot()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        doomed: dict[str, set[str]] = {}
        for table in snap.live:
            for part in self.damaged_parts(table, snap):
                tables = BATCH_TABLES if table in BATCH_TABLES else (table,)
                for t in tables:
                    if part.name in snap.files(t):
                        doomed.setdefault(t, set()).add(part.name)
        if not doomed:
            return []
        if snap.logged:
            self.record(f"repair-{stamp}", {}, doomed)
        moved: list[tuple[Path, Path]] = []
        for table, names in doomed.items():
            for name in sorted(names):
                source = self.table_dir(table) / name
                target = self.path / "_quarantine" / table / f"{name}.{stamp}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                moved.append((source, target))
        return moved

    def sweep(self, older_than_s: float = 0.0) -> int:
        """Delete what no reader can see: temporaries and parts a killed writer left without a
        commit record, and parts a compaction removed more than ``older_than_s`` ago (readers
        that took their snapshot before it may still read those). Returns the files deleted."""
        snap = self.snapshot()
        if not snap.logged:
            stale = [p for p in self.path.glob("*/.part-*.tmp") if p.is_file()]
        else:
            now = time.time()
            stale = [p for p in self.path.glob("*/.*.tmp") if p.is_file()]
            stale += [p for p in self.log_dir.glob(".*.tmp") if p.is_file()]
            for folder in self.path.iterdir():
                if not folder.is_dir() or folder.name.startswith(("_", ".")):
                    continue
                for part in folder.glob("part-*.parquet"):
                    if part.name in snap.files(folder.name):
                        continue
                    removed_at = snap.removed.get(f"{folder.name}/{part.name}")
                    if removed_at is None or now - removed_at >= older_than_s:
                        stale.append(part)
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)
