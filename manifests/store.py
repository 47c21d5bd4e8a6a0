"""A dataset root on disk: one folder per table, one Parquet part per work unit.

Layout::

    ROOT/videos/part-<video_id>.parquet    one row; written after all its clips: the video is done
    ROOT/clips/part-<clip_id>.parquet      one clip row; written after its tracks: the clip is done
    ROOT/tracks/part-<clip_id>.parquet     the clip's per-frame arrays
    ROOT/decisions/part-<set_id>.parquet   one decision set each (append-only)
    ROOT/runs/<run_id>.json                run summaries
    ROOT/logs/<run_id>.log                 tracebacks of the failures a run recorded
    ROOT/_quarantine/<table>/              damaged parts moved aside by ``curate check --repair``
    ROOT/.lock                             held by the run writing the root (manifests.lock)

Every part is written to a hidden temporary file in the same folder, flushed and renamed into
place, so a reader sees either the whole part or none of it, and rewriting a part with the same
key replaces it instead of adding rows. A part damaged afterwards (a truncated copy, a bad disk)
is one that does not start and end with Parquet's magic bytes: readers leave it out, a run
treats its unit as not done and writes it again, and :meth:`DatasetRoot.repair` moves it aside.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


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


class DatasetRoot:
    """The Parquet tables of one curation dataset."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def table_dir(self, table: str) -> Path:
        return self.path / table

    def part_path(self, table: str, key: str) -> Path:
        return self.table_dir(table) / f"part-{key}.parquet"

    def parts(self, table: str) -> list[Path]:
        folder = self.table_dir(table)
        return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []

    def write_part(
        self, table: str, key: str, records: Sequence[Mapping[str, Any]], schema: pa.Schema
    ) -> Path:
        """Validate ``records`` against ``schema`` and commit them as the part ``key`` of ``table``."""
        return write_parquet_atomic(records_to_table(records, schema), self.part_path(table, key))

    def write_table(self, table: str, key: str, data: pa.Table) -> Path:
        """Commit an Arrow table as the part ``key`` of ``table`` (for tables kept by the project
        itself, such as indexes, whose rows are built as columns rather than dicts)."""
        return write_parquet_atomic(data, self.part_path(table, key))

    def read_table(self, table: str, columns: Sequence[str] | None = None) -> pa.Table | None:
        """Every committed, undamaged row of ``table`` (only ``columns`` when given); ``None`` when
        the table has no parts."""
        parts = [p for p in self.parts(table) if is_complete_parquet(p)]
        if not parts:
            return None
        return pa.concat_tables(
            [pq.read_table(p, columns=list(columns) if columns else None) for p in parts], promote_options="default"
        )

    def has_part(self, table: str, key: str) -> bool:
        """Whether the part ``key`` of ``table`` is committed and undamaged."""
        return is_complete_parquet(self.part_path(table, key))

    def damaged_parts(self, table: str) -> list[Path]:
        """Parts of ``table`` that are not complete Parquet files."""
        return [p for p in self.parts(table) if not is_complete_parquet(p)]

    def clip_done(self, clip_id: str) -> bool:
        """The clip's clips and tracks parts are both committed and undamaged."""
        return self.has_part("clips", clip_id) and self.has_part("tracks", clip_id)

    def video_done(self, video_id: str) -> bool:
        """The video's part and the parts of every clip cut from it are committed and undamaged."""
        if not self.has_part("videos", video_id):
            return False
        clips = self.table_dir("clips").glob(f"part-{video_id}_*.parquet")
        return all(self.clip_done(p.name[len("part-") : -len(".parquet")]) for p in clips)

    def repair(self) -> list[tuple[Path, Path]]:
        """Move every damaged part aside into ``_quarantine/``, with the parts that marked its unit
        done (a clip's clips part, its video's part), so that the next run recomputes them.
        Returns (from, to) for every file moved. Call only while holding the lock."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        moved: list[tuple[Path, Path]] = []

        def move(path: Path) -> None:
            if path.exists():
                target = self.path / "_quarantine" / path.parent.name / f"{path.name}.{stamp}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                moved.append((path, target))

        for table in ("tracks", "clips", "videos", "decisions", "inputs"):
            for part in self.damaged_parts(table):
                key = part.name[len("part-") : -len(".parquet")]
                move(part)
                # What marked its unit done goes too: a clip's clips part, the clip's video's part.
                if table == "tracks":
                    move(self.part_path("clips", key))
                if table in ("tracks", "clips"):
                    move(self.part_path("videos", key.rsplit("_", 2)[0]))
        return moved

    def remove_stale_temps(self) -> int:
        """Delete temporary files a killed writer left behind; call only while holding the lock."""
        stale = [p for p in self.path.glob("*/.part-*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def committed_keys(self, table: str) -> set[str]:
        """Keys of the committed parts of ``table`` (for ``videos``: the finished video ids)."""
        return {p.name[len("part-") : -len(".parquet")] for p in self.parts(table)}
