"""``curate query``: SQL over a dataset root through DuckDB, printed or saved."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Literal, TextIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot, existing_root, write_parquet_atomic
from manifests.views import connect, lock_down, not_read_only
from settings.config import QUERY_MEMORY_MB, QUERY_TIMEOUT_S
from settings.errors import InvalidInput, NothingToWorkOn

Format = Literal["table", "csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json", "parquet")


class QueryFailed(NothingToWorkOn, ValueError):
    """DuckDB refused the SQL or could not run it: a syntax error, an unknown view or column, a
    file outside the readable folders."""


class NotReadOnly(QueryFailed):
    """The SQL holds a statement that would write or change settings (COPY, CREATE, SET, ...)."""


def query(
    root: str | Path,
    sql: str,
    readable: Sequence[str | Path] = (),
    memory_mb: int = QUERY_MEMORY_MB,
    timeout_s: float = QUERY_TIMEOUT_S,
) -> pa.Table:
    """Run ``sql`` against the views of the dataset root ``root`` (a folder or an object-store
    URL; see :mod:`manifests.views`).

    Locked down: only reading statements run; DuckDB reads no file outside the root and the
    ``readable`` folders (each an existing folder), writes none, spills nothing, and installs or
    loads no extension; the settings cannot be changed back from the SQL. It uses at most
    ``memory_mb`` and is stopped after ``timeout_s`` seconds. What DuckDB refuses raises
    :class:`QueryFailed`.
    """
    for folder in readable:
        if not str(folder).strip() or not Path(folder).is_dir():
            raise InvalidInput(f"--read {str(folder)!r}: not an existing folder")
    dataset = existing_root(root)
    con = connect(dataset, dataset_schemas())
    stopper = threading.Timer(timeout_s, con.interrupt)
    try:
        refused = not_read_only(con, sql)
        if refused:
            raise NotReadOnly(f"curate query only reads: {refused}")
        lock_down(con, dataset, readable, memory_mb)
        stopper.start()
        return con.sql(sql).to_arrow_table()
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).splitlines()[0]
        raise QueryFailed(f"{first}: the query needs more than --memory-mb {memory_mb}") from None
    except duckdb.InterruptException:
        raise QueryFailed(f"the query was stopped after {timeout_s:g} s (--timeout-s)") from None
    except duckdb.Error as exc:
        raise QueryFailed(str(exc)) from None
    finally:
        stopper.cancel()
        con.close()


def _json_default(value: object) -> object:
    return str(value)


class OutputInRoot(InvalidInput, ValueError):
    """``--output`` names a file inside the dataset root: the root's files are written by curate only."""


def check_output(root: str | Path, output: Path | None) -> None:
    """Refuse an ``output`` path inside the local dataset root ``root`` (links resolved)."""
    dataset = DatasetRoot(root)
    if output is None or dataset.remote:
        return
    inside = dataset.path.resolve()
    if output.resolve() == inside or inside in output.resolve().parents:
        raise OutputInRoot(f"--output {output} is inside the dataset root {dataset.uri}: write it elsewhere")


def emit(table: pa.Table, fmt: Format, output: Path | None, stream: TextIO = sys.stdout) -> None:
    """Write ``table`` as a text table, CSV, JSON lines, or Parquet (``output`` required)."""
    if fmt == "parquet":
        if output is None:
            raise ValueError("--format parquet needs --output FILE")
        write_parquet_atomic(table, output)
        return
    with open(output, "w") if output else nullcontext(stream) as out:
        _write_text(table, fmt, out)


def _write_text(table: pa.Table, fmt: Format, out: TextIO) -> None:
    if fmt == "json":
        for row in table.to_pylist():
            out.write(json.dumps(row, default=_json_default) + "\n")
    elif fmt == "csv":
        # CSV cannot hold lists, structs and maps: those columns become JSON text.
        columns = {
            name: (
                [json.dumps(v, default=_json_default) for v in table[name].to_pylist()]
                if pa.types.is_nested(table.schema.field(name).type)
                else table[name]
            )
            for name in table.column_names
        }
        sink = pa.BufferOutputStream()
        pacsv.write_csv(pa.table(columns), sink)
        out.write(sink.getvalue().to_pybytes().decode())
    elif table.num_rows:
        text = str(duckdb.from_arrow(table))
        # DuckDB leaves columns out to fit the terminal ("7 columns (6 shown)"): every column
        # asked for is shown instead, one row at a time.
        out.write(vertical(table) if " shown)" in text else text)
    else:
        out.write(f"(0 rows) columns: {table.column_names}\n")


def vertical(table: pa.Table) -> str:
    """Each row as a block of ``column | value`` lines (values as DuckDB prints them in a cell)."""
    width = max(len(name) for name in table.column_names)
    blocks = []
    for i, row in enumerate(table.to_pylist(), start=1):
        lines = [f"-[ row {i} ]" + "-" * max(width - 6, 4)]
        lines += [f"{name.ljust(width)} | {value}" for name, value in row.items()]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"
