"""`curate query`'s table shows every column asked for: too wide for the terminal, it turns to one
row at a time instead of leaving columns out."""

from __future__ import annotations

import io

import pyarrow as pa

from curate.query import _write_text


def test_a_narrow_result_is_a_table_and_a_wide_one_shows_every_column() -> None:
    narrow = pa.table({"verdict": ["accept", "review"], "n": [4, 2]})
    out = io.StringIO()
    _write_text(narrow, "table", out)
    assert "verdict" in out.getvalue() and "┌" in out.getvalue()
    wide = pa.table(
        {f"column_with_a_long_name_{i}": ["a value long enough to be wide " * 2] for i in range(8)}
    )
    out = io.StringIO()
    _write_text(wide, "table", out)
    text = out.getvalue()
    assert "shown)" not in text
    for name in wide.column_names:
        assert f"{name} | a value long enough" in text
