"""Every command's --help reads whole: config section names in square brackets survive (they are
not taken for markup), option texts are not cut, and the query help names every view."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from curate.cli import app
from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot
from manifests.views import connect

COMMAND = typer.main.get_command(app)


def every_command(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(group, "commands"):  # typer's own click: a group has commands
        for name, sub in group.commands.items():
            found += every_command(sub, (*path, name))
    return found


def help_of(path: tuple[str, ...]) -> str:
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert done.exit_code == 0, (path, done.output)
    return done.output


@pytest.mark.parametrize("path", every_command(COMMAND), ids=lambda p: " ".join(p) or "curate")
def test_every_help_renders_without_lost_words(path: tuple[str, ...]) -> None:
    text = help_of(path)
    assert "Usage:" in text
    assert "…" not in text, "an option text was cut"
    command = COMMAND
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for source in [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]:
        for bracketed in re.findall(r"\[[a-z_.]+\]", source):
            assert bracketed in text, (path, bracketed)


def test_known_words_survive(tmp_path) -> None:
    assert "[filter] thresholds" in help_of(("filter",))
    assert "curate.example.toml" in help_of(("run",))
    views = {
        name
        for (name,) in connect(DatasetRoot(tmp_path), dataset_schemas())
        .sql("select table_name from information_schema.tables where table_type = 'VIEW'")
        .fetchall()
        if not name.startswith("_")
    }
    assert {"clips", "current_decisions", "failures"} <= views
    query = " ".join(help_of(("query",)).split())
    for view in views:
        assert view in query, view
