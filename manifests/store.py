"""A dataset root: Parquet parts per table, made visible by commit records, in a local folder or
under an object-store prefix (``s3://bucket/prefix``, :mod:`manifests.fs`).

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

The design asks of the storage only whole-object writes and listing: on disk each file goes
through a temporary file, fsync and a rename; on an object store, where one PUT is atomic and
there is no rename, each file and record is PUT directly (see :mod:`manifests.fs`).

A part damaged after its commit (a truncated copy, a bad disk) is one that does not start and end
with Parquet's magic bytes: readers leave it out, and :meth:`DatasetRoot.quarantine` moves it aside
with the other parts of its batch so that a run redoes that batch's clips.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.fs import (
    PARQUET_MAGIC,
    LocalStorage,
    ObjectStorage,
    RemoteRoot,
    is_complete_parquet_file,
    is_remote,
    open_storage,
)
from manifests.schema import schema_problem
from settings.errors import EnvironmentRefused, InvalidInput, NothingToWorkOn, one_line
from settings.redact import redact

LOG = "_log"
#: Where every commit record and checkpoint has its second copy, read when the first is damaged.
COPIES = "_log/_copy"
CHECKPOINT = "_checkpoint-"
#: The most a commit record or checkpoint may hold (a checkpoint of 10^8 clips names about 2 MB
#: of parts): a bigger one is damaged, never read into memory.
RECORD_MAX_BYTES = 256 * 1024**2
#: Tables whose parts of one batch share a key: a clip is committed with its tracks and its video.
BATCH_TABLES = ("clips", "tracks", "videos")


class SchemaMismatch(ValueError):
    """Records do not agree with the table schema they are written with."""


class NotARoot(InvalidInput, ValueError):
    """The folder exists but holds no dataset root (no commit log, no table parts)."""


def existing_root(path: str | os.PathLike[str]) -> DatasetRoot:
    """The dataset root at ``path``, for commands that read or tidy one: :class:`NoSuchRoot` when
    nothing is there, :class:`NotARoot` when a folder is there that no run wrote (so nothing is
    written into it)."""
    root = DatasetRoot(path)
    if not root.exists():
        raise NoSuchRoot(f"dataset root {root.uri} does not exist")
    if not root.storage.is_dir(LOG) and not root.snapshot().live:
        raise NotARoot(
            f"{root.uri} is not a dataset root (no _log folder, no table parts): `curate run` makes one"
        )
    return root


class NoSuchRoot(NothingToWorkOn, FileNotFoundError):
    """A command that reads a dataset root was given a location with none."""


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
        table = pa.Table.from_pylist([_redacted(rec) for rec in records], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatch(str(exc)) from exc
    table.validate(full=True)
    for f in schema:
        if not f.nullable and table.column(f.name).null_count:
            raise SchemaMismatch(f"column {f.name!r} must not be null")
    return table


def _redacted(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with the credentials of any URI in its text (and text maps, such as
    ``errors``) replaced (:func:`settings.redact.redact`): no row keeps a secret."""
    out = dict(record)
    for name, value in record.items():
        if isinstance(value, str):
            out[name] = redact(value)
        elif isinstance(value, dict):
            out[name] = {k: redact(v) if isinstance(v, str) else v for k, v in value.items()}
    return out


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, fsync it and rename it to ``path``: readers
    see the old file or the whole new one, never a part."""
    LocalStorage(path.parent).write(path.name, write)
    return path


def write_parquet_atomic(table: pa.Table, path: Path, row_group_size: int | None = None) -> Path:
    """Write ``table`` to ``path`` through a temporary file and an atomic rename."""
    return atomic_write(path, _parquet_writer(table, row_group_size))


def _parquet_writer(table: pa.Table, row_group_size: int | None = None) -> Callable[[Path], None]:
    return lambda tmp: pq.write_table(
        table, tmp, row_group_size=row_group_size, compression="zstd", write_page_checksum=True
    )


def is_complete_parquet(path: Path) -> bool:
    """Whether ``path`` starts and ends with Parquet's magic bytes (a truncated or overwritten
    part does not); two 4-byte reads, no parsing."""
    return is_complete_parquet_file(path)


def new_key() -> str:
    """A part key no other writer picks: the time to the second, then 12 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]


def part_key(path: Path | str) -> str:
    """The key of a part, from its path, location or file name (``.../part-<key>.parquet``)."""
    name = str(path).rsplit("/", 1)[-1]
    return name[len("part-") : -len(".parquet")]


@dataclass
class Snapshot:
    """The live files of every table at one moment (file names relative to the table's folder)."""

    live: dict[str, set[str]] = field(default_factory=dict)
    removed: dict[str, float] = field(default_factory=dict)  # "table/file" -> when a commit removed it
    records: list[str] = field(default_factory=list)  # the commit records not folded into a checkpoint
    logged: bool = True  # False for a root written before commit records
    damaged: dict[str, str] = field(default_factory=dict)  # "_log/<record>" -> why it was left out
    recovered: dict[str, str] = field(default_factory=dict)  # "_log/<record>" read from its copy -> why
    folded: list[str] = field(default_factory=list)  # records a checkpoint folded that are still on disk

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
    """The Parquet tables of one curation dataset, in a local folder or under an object-store
    prefix (``DatasetRoot("s3://bucket/prefix")``).

    Files are named two ways. The methods that return a :class:`~pathlib.Path` (``path``,
    ``table_dir``, ``part_path``, ``parts``, ``readable_parts``) are for local roots, and raise
    :class:`~manifests.fs.RemoteRoot` on an object-store root. Their counterparts ``uri``,
    ``locate`` and ``part_rels``, ``readable_rels``, ``damaged_rels`` (paths relative to the
    root) give strings for both; reading and writing (``snapshot``,
    ``read_table``, ``read_parquet``, ``committed``, ``commit``, ``record``, ``checkpoint``,
    ``write_part``, ``write_table``, ``write_file``, ``sweep``, ``quarantine``) work on both.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.storage: LocalStorage | ObjectStorage = open_storage(path)
        self._problems: dict[str, str | None] = {}  # part -> why it cannot be read (parts never change)

    @property
    def remote(self) -> bool:
        """Whether the root is on an object store."""
        return self.storage.remote

    @property
    def uri(self) -> str:
        """Where the root is: its local path, or its ``scheme://bucket/prefix`` URL."""
        return self.storage.uri

    @property
    def path(self) -> Path:
        """The root's local folder; :class:`~manifests.fs.RemoteRoot` on an object-store root."""
        if isinstance(self.storage, LocalStorage):
            return self.storage.path
        raise RemoteRoot(f"{self.uri} is an object-store root: this needs a dataset root on a local disk")

    def exists(self) -> bool:
        """Whether the root holds anything (a folder; an object under the prefix)."""
        return self.storage.is_dir()

    # -- files -------------------------------------------------------------------------------

    def table_dir(self, table: str) -> Path:
        return self.path / table

    def part_path(self, table: str, key: str) -> Path:
        return self.table_dir(table) / f"part-{key}.parquet"

    def locate(self, rel: str) -> str:
        """The location (path or URL) of the file ``rel`` (relative to the root, ``/``-separated)."""
        return self.storage.location(rel)

    def part_rels(self, table: str, snapshot: Snapshot | None = None) -> list[str]:
        """The live files of ``table`` as paths relative to the root (``<table>/part-<key>.parquet``)."""
        snap = snapshot or self.snapshot()
        return sorted(f"{table}/{name}" for name in snap.files(table))

    def readable_rels(
        self, table: str, snapshot: Snapshot | None = None, schema: pa.Schema | None = None
    ) -> list[str]:
        """The live parts of ``table`` that are complete Parquet files (and, given the table's
        ``schema``, of that schema: :meth:`part_problem`), relative to the root."""
        if schema is not None:
            return [r for r in self.part_rels(table, snapshot) if self.part_problem(r, schema) is None]
        return [r for r in self.part_rels(table, snapshot) if self.storage.is_complete_parquet(r)]

    def damaged_rels(self, table: str, snapshot: Snapshot | None = None) -> list[str]:
        """Live files of ``table`` that are not complete Parquet files, relative to the root."""
        return [r for r in self.part_rels(table, snapshot) if not self.storage.is_complete_parquet(r)]

    def is_complete(self, rel: str) -> bool:
        """Whether the file ``rel`` is a complete Parquet file (see :func:`is_complete_parquet`)."""
        return self.storage.is_complete_parquet(rel)

    def part_problem(self, rel: str, schema: pa.Schema) -> str | None:
        """Why the live part ``rel`` cannot be read as a part of a table of ``schema`` (not a
        complete Parquet file, a footer that does not parse, a required column missing, a column
        of another kind), or ``None``. Reads the footer only; once per part and root object."""
        if rel not in self._problems:
            if not self.is_complete(rel):
                self._problems[rel] = "not a complete Parquet file"
            else:
                try:
                    self._problems[rel] = schema_problem(self.parquet_file(rel).schema_arrow, schema)
                except (OSError, pa.ArrowException) as exc:
                    self._problems[rel] = f"its footer does not read ({exc})"
        return self._problems[rel]

    def verify_part(self, rel: str, schema: pa.Schema) -> str | None:
        """:meth:`part_problem`, then every page read and decoded (its checksum verified where the
        writer stored one, as commits do): why the part cannot be read, or ``None``."""
        problem = self.part_problem(rel, schema)
        if problem is not None:
            return problem
        filesystem, where = self.storage.arrow(rel)
        try:
            part = pq.ParquetFile(where, filesystem=filesystem, page_checksum_verification=True)
            for _ in part.iter_batches(batch_size=65536):
                pass
        except (OSError, pa.ArrowException) as exc:
            return f"its pages do not read ({one_line(exc)})"
        return None

    def parquet_file(self, rel: str) -> pq.ParquetFile:
        """The Parquet file ``rel``, open for reading (metadata, row groups, batches)."""
        filesystem, where = self.storage.arrow(rel)
        return pq.ParquetFile(where, filesystem=filesystem)

    def read_parquet(self, rel: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows of the Parquet file ``rel`` (only ``columns`` when given)."""
        filesystem, where = self.storage.arrow(rel)
        return pq.read_table(where, columns=list(columns) if columns else None, filesystem=filesystem)

    def read_bytes(self, rel: str) -> bytes:
        return self.storage.read_bytes(rel)

    def write_file(self, rel: str, data: bytes) -> str:
        """Write the file ``rel`` whole (readers see the old bytes or the new, never a part), such
        as a run summary, with the credentials of any URI in it redacted; returns its location."""
        self.storage.write_bytes(rel, redact(data.decode("utf-8", "replace")).encode())
        return self.locate(rel)

    def append_log(self, rel: str, text: str) -> str:
        """Append ``text`` to the log ``rel`` (on an object store, which cannot append, each text is
        an object of its own beside it), with the credentials of any URI in it redacted;
        returns the relative path written."""
        return self.storage.append_text(rel, redact(text))

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The live files of every table: the latest checkpoint, plus the adds of the commit
        records it did not fold in, minus their removes. Retried when a compaction deletes the
        records being read."""
        if not self.storage.is_dir(LOG):
            return self._legacy_snapshot()
        for _ in range(20):
            try:
                return self._read_log()
            except FileNotFoundError:
                time.sleep(0.05)
        return self._read_log()

    def _read_log(self) -> Snapshot:
        names = sorted(n for n in self.storage.files(LOG) if n.endswith(".json") and not n.startswith("."))
        snap = Snapshot()
        checkpoint: dict[str, Any] | None = None
        for name in reversed([n for n in names if n.startswith(CHECKPOINT)]):
            checkpoint = self._valid_record(name, snap, checkpoint=True)
            if checkpoint is not None:
                break
        folded: set[str] = set()
        if checkpoint is not None:
            snap.live = {t: set(files) for t, files in checkpoint["live"].items()}
            snap.removed = dict(checkpoint.get("removed", {}))
            folded = set(checkpoint["folded"])
        removes: list[tuple[str, str, float]] = []
        for name in names:
            if name in folded:
                snap.folded.append(name)  # a checkpoint killed before deleting it
            if name.startswith(CHECKPOINT) or name in folded:
                continue
            record = self._valid_record(name, snap)
            if record is None:
                continue
            snap.records.append(name)
            for table, files in record.get("add", {}).items():
                snap.live.setdefault(table, set()).update(files)
            removes += [(t, f, record["at"]) for t, files in record.get("remove", {}).items() for f in files]
        for table, file, at in removes:
            snap.live.get(table, set()).discard(file)
            snap.removed[f"{table}/{file}"] = at
        return snap

    def _valid_record(self, name: str, snap: Snapshot, checkpoint: bool = False) -> dict[str, Any] | None:
        """The commit record (or checkpoint) ``_log/<name>``, or ``None`` when it is damaged: not a
        JSON object of the record's shape, or naming a file that is not a part of a table folder
        of this root. A damaged one is read from its copy (noted in ``snap.recovered``) or, with
        the copy damaged too, noted in ``snap.damaged`` (and warned about) and left out."""
        rel = f"{LOG}/{name}"
        record, why = self._parse_record(rel, checkpoint)
        if why is None:
            return record
        copy, copy_why = self._parse_record(f"{COPIES}/{name}", checkpoint)
        if copy_why is None:
            snap.recovered[rel] = why
            return copy
        snap.damaged[rel] = why
        warnings.warn(
            f"left out the damaged commit record {self.locate(rel)}: {why}; "
            f"`curate check {self.uri} --repair` moves it aside",
            DamagedRecord,
            stacklevel=3,
        )
        return None

    def _parse_record(self, rel: str, checkpoint: bool) -> tuple[dict[str, Any], None] | tuple[None, str]:
        """The record at ``rel`` and ``None``, or ``None`` and why it is not one."""
        try:
            record = json.loads(self.storage.read_bytes(rel, max_bytes=RECORD_MAX_BYTES))
            why = record_problem(record, checkpoint)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            why = f"not JSON ({exc})"
        except FileNotFoundError:
            why = "missing"
        except OSError as exc:  # a folder, a link, a FIFO in its place
            why = str(exc)
        return (record, None) if why is None else (None, why)

    def _legacy_snapshot(self) -> Snapshot:
        snap = Snapshot(logged=False)
        for folder in self.storage.folders():
            if not folder.startswith(("_", ".")):
                parts = {n for n in self.storage.files(folder) if _is_part_name(n)}
                if parts:
                    snap.live[folder] = parts
        return snap

    def parts(self, table: str, snapshot: Snapshot | None = None) -> list[Path]:
        """The live files of ``table`` (from ``snapshot``, else a fresh one), sorted."""
        return [self.path / rel for rel in self.part_rels(table, snapshot)]

    def readable_parts(self, table: str, snapshot: Snapshot | None = None) -> list[Path]:
        return [p for p in self.parts(table, snapshot) if is_complete_parquet(p)]

    def read_table(
        self, table: str, columns: Sequence[str] | None = None, snapshot: Snapshot | None = None
    ) -> pa.Table | None:
        """Every live, undamaged row of ``table`` (only ``columns`` when given); ``None`` when
        the table has no parts."""
        rels = self.readable_rels(table, snapshot)
        if not rels:
            return None
        return pa.concat_tables([self.read_parquet(r, columns) for r in rels], promote_options="default")

    def committed(self) -> Committed:
        """The clips and videos a run skips. A clip is committed when it is in an undamaged
        ``clips`` part whose batch's ``tracks`` part is live and undamaged; a video is done
        when its row is committed and so are as many of its clips as it planned."""
        snap = self.snapshot()
        tracks = {part_key(r) for r in self.readable_rels("tracks", snap)}
        clips: set[str] = set()
        per_video: dict[str, int] = {}
        for rel in self.readable_rels("clips", snap):
            if part_key(rel) in tracks:
                rows = self.read_parquet(rel, ["clip_id", "video_id"])
                for clip, video in zip(
                    rows["clip_id"].to_pylist(), rows["video_id"].to_pylist(), strict=True
                ):
                    if clip not in clips:
                        clips.add(clip)
                        per_video[video] = per_video.get(video, 0) + 1
        videos: set[str] = set()
        done: set[str] = set()
        for rel in self.readable_rels("videos", snap):
            rows = self.read_parquet(rel, ["video_id", "n_clips"])
            for video, planned in zip(rows["video_id"].to_pylist(), rows["n_clips"].to_pylist(), strict=True):
                videos.add(video)
                if per_video.get(video, 0) >= (planned or 0):
                    done.add(video)
        return Committed(clips, videos, done)

    # -- writing -----------------------------------------------------------------------------

    def write_parquet(self, rel: str, write: Callable[[Path], object]) -> None:
        """Write the file ``rel`` whole with ``write(path)`` (a temporary local file): a rename
        on disk, one upload on an object store."""
        self.storage.write(rel, write)

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
        name = f"part-{key}.parquet"
        for table, data in tables.items():
            self.storage.write(f"{table}/{name}", _parquet_writer(data))
        self.record(key, {t: [name] for t in tables}, remove or {})
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
        from, read both its copies back, and only then delete the records it folds in and older
        checkpoints: until the new one is verified, the old state stays whole on disk. Returns
        the records folded. Files removed by a commit are remembered until they are gone from
        disk. Raises :class:`CheckpointNotKept` (deleting nothing) when a copy does not read back."""
        if snapshot.damaged:
            return 0  # the records a damaged one replaced are unknown: fold nothing over it
        removed = {name: at for name, at in snapshot.removed.items() if self.storage.exists(name)}
        folded = sorted(set(snapshot.records) | set(snapshot.folded))
        point = {
            "at": time.time(),
            "live": {t: sorted(files) for t, files in snapshot.live.items() if files},
            "removed": removed,
            "folded": folded,
        }
        name = f"{CHECKPOINT}{time.time_ns():020d}.json"
        self._write_record(name, point)
        for rel in (f"{LOG}/{name}", f"{COPIES}/{name}"):
            if self._parse_record(rel, checkpoint=True)[0] != json.loads(json.dumps(point)):
                raise CheckpointNotKept(
                    f"the checkpoint {self.locate(rel)} did not read back as written: nothing was deleted"
                )
        for record in folded:
            self._delete_record(record)
        for older in self.storage.files(LOG):
            if older.startswith(CHECKPOINT) and older.endswith(".json") and older != name:
                self._delete_record(older)
        for orphan in set(self.storage.files(COPIES)) - {name}:
            self.storage.delete(f"{COPIES}/{orphan}")  # copies whose record is gone
        return len(snapshot.records)

    def _write_record(self, name: str, record: Mapping[str, Any]) -> None:
        """The record ``_log/<name>`` (the commit point), then its copy in ``_log/_copy/``."""
        data = json.dumps(record).encode()
        self.storage.write_bytes(f"{LOG}/{name}", data)
        self.storage.write_bytes(f"{COPIES}/{name}", data)

    def _delete_record(self, name: str) -> None:
        """Delete the record ``_log/<name>`` and its copy (the copy first: a copy is only ever
        read for a record that is there)."""
        self.storage.delete(f"{COPIES}/{name}")
        self.storage.delete(f"{LOG}/{name}")

    def damaged_copies(self, snapshot: Snapshot) -> dict[str, str]:
        """The second copies (``_log/_copy/<name>``) of the records and checkpoint ``snapshot``
        read from their first that are damaged or missing -> why."""
        names = [*snapshot.records, *(n for n in self.storage.files(LOG) if n.startswith(CHECKPOINT))]
        found = {}
        for name in names:
            rel = f"{LOG}/{name}"
            if rel in snapshot.recovered or rel in snapshot.damaged:
                continue
            _, why = self._parse_record(f"{COPIES}/{name}", name.startswith(CHECKPOINT))
            if why is not None:
                found[f"{COPIES}/{name}"] = why
        return found

    def restore_log(self, damaged: Mapping[str, str]) -> list[tuple[str, str]]:
        """Rewrite each damaged copy of a record (``_log/<name>`` or ``_log/_copy/<name>``, the
        keys of ``damaged``) from its other copy; returns (from, to) relative paths."""
        restored = []
        for rel in sorted(damaged):
            name = rel.rsplit("/", 1)[-1]
            source = f"{LOG}/{name}" if rel.startswith(COPIES) else f"{COPIES}/{name}"
            self.storage.write_bytes(rel, self.storage.read_bytes(source))
            restored.append((source, rel))
        return restored

    def adopt_legacy(self) -> None:
        """Give a root written before commit records its first record, naming the parts it
        holds, so that they stay visible once records exist."""
        if self.storage.is_dir(LOG):
            return
        legacy = self._legacy_snapshot()
        if isinstance(self.storage, LocalStorage):
            (self.storage.path / LOG).mkdir(parents=True, exist_ok=True)
        if legacy.live or self.remote:
            # On an object store a folder exists only while it holds an object: the first record
            # (empty when there is nothing to adopt) is what makes the root a logged one.
            record = {"at": time.time(), "add": {t: sorted(f) for t, f in legacy.live.items()}, "remove": {}}
            self._write_record(f"{0:020d}-adopted.json", record)

    def write_part(
        self, table: str, key: str, records: Sequence[Mapping[str, Any]], schema: pa.Schema
    ) -> str:
        """Validate ``records`` against ``schema`` and commit them as the part ``key`` of ``table``;
        returns the part's location."""
        self.commit({table: records_to_table(records, schema)}, key)
        return self.locate(f"{table}/part-{key}.parquet")

    def write_table(self, table: str, key: str, data: pa.Table) -> str:
        """Commit an Arrow table as the part ``key`` of ``table`` (for tables kept by the project
        itself, such as indexes, whose rows are built as columns rather than dicts); returns the
        part's location."""
        self.commit({table: data}, key)
        return self.locate(f"{table}/part-{key}.parquet")

    # -- upkeep (only while holding the lock) -------------------------------------------------

    def quarantine(self, also: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Move every damaged live part (not a complete Parquet file, or named in ``also``:
        parts whose content failed a check) aside into ``_quarantine/``, with the other parts of
        its batch (``clips``, ``tracks``, ``videos`` of the same key), and commit their removal,
        so that the next run recomputes that batch's clips. Returns (from, to) relative paths of
        every file moved (on an object store, a move is a copy and a delete)."""
        snap = self.snapshot()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        doomed: dict[str, set[str]] = {}
        also = set(also)
        for table in snap.live:
            for rel in self.part_rels(table, snap):
                if rel not in also and self.storage.is_complete_parquet(rel):
                    continue
                name = rel.rsplit("/", 1)[-1]
                for t in BATCH_TABLES if table in BATCH_TABLES else (table,):
                    if name in snap.files(t):
                        doomed.setdefault(t, set()).add(name)
        if not doomed:
            return []
        if snap.logged:
            self.record(f"repair-{stamp}", {}, doomed)
        moved: list[tuple[str, str]] = []
        for table, names in doomed.items():
            for name in sorted(names):
                source, target = f"{table}/{name}", f"_quarantine/{table}/{name}.{stamp}"
                if not self.storage.exists(source):  # deleted by hand: its removal is committed above
                    moved.append((source, "(gone)"))
                    continue
                self.storage.move(source, target)
                moved.append((source, target))
        return moved

    def sweep(self, older_than_s: float = 0.0) -> int:
        """Delete what no reader can see: temporaries and parts a killed writer left without a
        commit record, and parts a compaction removed more than ``older_than_s`` ago (readers
        that took their snapshot before it may still read those). Returns the files deleted."""
        snap = self.snapshot()
        kept = self.quarantine_names()
        if not snap.logged:
            stale = [r for r in self.storage.temporaries() if r.rsplit("/", 1)[-1].startswith(".part-")]
        elif snap.damaged or kept is None:  # the parts a damaged record named are unknown: none is deleted
            stale = self.storage.temporaries()
        else:
            now = time.time()
            stale = self.storage.temporaries()
            for folder in self.storage.folders():
                if folder.startswith(("_", ".")):
                    continue
                for name in self.storage.files(folder):
                    if not _is_part_name(name) or name in snap.files(folder):
                        continue
                    if _named(name, kept):
                        continue
                    removed_at = snap.removed.get(f"{folder}/{name}")
                    if removed_at is None or now - removed_at >= older_than_s:
                        stale.append(f"{folder}/{name}")
        for rel in stale:
            self.storage.delete(rel)
        return len(stale)

    def quarantine_names(self) -> set[str] | None:
        """What the records moved into ``_quarantine/_log`` name, so that nothing deletes those
        parts: part names (and ``part-<key>`` prefixes, for a record too damaged to read, from
        its file name). ``None`` when a quarantined checkpoint cannot be read: it may have named
        any part."""
        names: set[str] = set()
        for entry in self.storage.files(f"_quarantine/{LOG}"):
            name = entry.rsplit(".json", 1)[0] + ".json"
            record, _ = self._parse_record(f"_quarantine/{LOG}/{entry}", name.startswith(CHECKPOINT))
            if record is not None:
                for key in ("live", "add", "remove"):
                    names.update(f for files in record.get(key, {}).values() for f in files)
            elif name.startswith(CHECKPOINT):
                return None
            else:
                names.add("part-" + name.removesuffix(".json").split("-", 1)[-1])
        return names

    def unreferenced(self, snapshot: Snapshot | None = None) -> list[str]:
        """Parts on disk that no live record names and no commit removed (a killed writer's
        leftovers, or the parts of a deleted record), relative to the root."""
        snap = snapshot or self.snapshot()
        if not snap.logged:
            return []
        return sorted(
            f"{folder}/{name}"
            for folder in self.storage.folders()
            if not folder.startswith(("_", "."))
            for name in self.storage.files(folder)
            if _is_part_name(name)
            and name not in snap.files(folder)
            and f"{folder}/{name}" not in snap.removed
        )

    def quarantine_records(self, snapshot: Snapshot) -> list[tuple[str, str]]:
        """Move the damaged commit records of ``snapshot`` into ``_quarantine/_log/``; returns
        (from, to) relative paths."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        moved = []
        for rel in sorted(snapshot.damaged):
            target = f"_quarantine/{rel}.{stamp}"
            self.storage.move(rel, target)
            moved.append((rel, target))
        return moved


def _named(part: str, names: set[str]) -> bool:
    """Whether the part file name ``part`` is in ``names`` or is a ``part-<key>`` there (a
    batch's ``part-<key>.parquet``, a compaction's ``part-<key>-<n>.parquet``)."""
    key = part.removesuffix(".parquet")
    return part in names or key in names or key.rsplit("-", 1)[0] in names


def _is_part_name(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


class CheckpointNotKept(EnvironmentRefused):
    """The storage did not keep a checkpoint as it was written."""


class DamagedRecord(UserWarning):
    """A commit record of the root is damaged; readers leave it out."""


#: A table folder's name, and a part's file name, as commit records may name them.
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PART_NAME = re.compile(r"^part-[A-Za-z0-9_.-]+\.parquet$")


def record_problem(record: Any, checkpoint: bool = False) -> str | None:
    """Why ``record`` (parsed JSON) is not a commit record (``checkpoint``: a checkpoint), or
    ``None`` when it is one. Every file it names must be a part name inside a table folder."""
    if not isinstance(record, dict):
        return f"holds {type(record).__name__}, not a record"
    if not isinstance(record.get("at"), int | float):
        return "has no time ('at')"
    maps = ("live",) if checkpoint else ("add", "remove")
    for key in maps:
        tables = record.get(key, {})
        if not isinstance(tables, dict):
            return f"its {key!r} is not a table -> files map"
        for table, files in tables.items():
            if not _TABLE_NAME.match(str(table)) or not isinstance(files, list):
                return f"its {key!r} names a table {table!r} that is not a table folder"
            bad = [f for f in files if not isinstance(f, str) or not _PART_NAME.match(f) or ".." in f]
            if bad:
                return f"its {key!r} names {bad[0]!r}, not a part of {table!r}"
    if checkpoint and not isinstance(record.get("folded"), list):
        return "has no list of folded records"
    return None


__all__ = [
    "BATCH_TABLES",
    "CHECKPOINT",
    "LOG",
    "PARQUET_MAGIC",
    "Committed",
    "DatasetRoot",
    "RemoteRoot",
    "SchemaMismatch",
    "Snapshot",
    "atomic_write",
    "is_complete_parquet",
    "is_remote",
    "new_key",
    "part_key",
    "records_to_table",
    "write_parquet_atomic",
]
