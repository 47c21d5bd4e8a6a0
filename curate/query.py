"""``curate query``: SQL over a dataset root through DuckDB, printed or saved."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Literal, TextIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot, NoSuchRoot, write_parquet_atomic
from manifests.views import connect
from settings.errors import NothingToWorkOn

Format = Literal["table", "csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json", "parquet")


#: Statements a query may hold: reading only.
READ_ONLY = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class QueryFailed(NothingToWorkOn, ValueError):
    """DuckDB refused the SQL or could not run it: a syntax error, an unknown view or column, a
    file outside the readable folders."""


class NotReadOnly(QueryFailed):
    """The SQL holds a statement that would write or change settings (COPY, CREATE, SET, ...)."""


def query(root: str | Path, sql: str, readable: Sequence[str | Path] = ()) -> pa.Table:
    """Run ``sql`` against the views of the dataset root ``root`` (a folder or an object-store
    URL; see :mod:`manifests.views`).

    Locked down: only reading statements run; DuckDB reads no file outside the root and the
    ``readable`` folders, writes none, and installs or loads no extension; the settings cannot be
    changed back from the SQL. What DuckDB refuses raises :class:`QueryFailed`.
    """
    dataset = DatasetRoot(root)
    if not dataset.exists():
        raise NoSuchRoot(f"dataset root {dataset.uri} does not exist")
    con = connect(dataset, dataset_schemas())
    try:
        kinds = {statement.type for statement in con.extract_statements(sql)}
        if not kinds <= READ_ONLY:
            names = ", ".join(sorted(k.name for k in kinds - READ_ONLY))
            raise NotReadOnly(f"curate query only reads: {names} statements are refused")
        # An object-store root's views read through Arrow datasets registered above, not by path.
        own = [] if dataset.remote else [str(dataset.path.resolve()) + "/"]
        folders = [*own, *(str(Path(p).resolve()) + "/" for p in readable)]
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET allowed_directories = $folders", {"folders": folders})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryFailed(str(exc)) from None
    finally:
        con.close()


def _json_default(value: object) -> object:
    return str(value)


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
