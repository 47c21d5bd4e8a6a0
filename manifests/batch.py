"""Rows a worker has finished, held until they are committed together as one batch.

A run's workers do not write a part per clip: each keeps its finished clips (with their tracks)
and videos here and commits them as one batch (:meth:`DatasetRoot.commit`: a ``clips``, a
``tracks`` and a ``videos`` part with one key, made visible by one commit record) once
``max_clips`` clips are held or the oldest has waited ``max_wait_s``, and when the run ends.
A worker killed before that loses only what it held: those clips were never committed, so the
next run does them again, and nothing is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from manifests.store import DatasetRoot, records_to_table


class BatchWriter:
    """Hold rows of ``clips``, ``tracks`` and ``videos`` and commit them in batches."""

    def __init__(
        self, root: DatasetRoot, schemas: Mapping[str, pa.Schema], max_clips: int, max_wait_s: float
    ):
        self.root = root
        self.schemas = schemas
        self.max_clips = max_clips
        self.max_wait_s = max_wait_s
        self._rows: dict[str, list[dict[str, Any]]] = {"clips": [], "tracks": [], "videos": []}
        self._since: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Shipped to another process empty: held rows belong to the process that made them."""
        state = dict(self.__dict__)
        state["_rows"] = {t: [] for t in self._rows}
        state["_since"] = None
        return state

    @property
    def held(self) -> int:
        """Rows held, all tables."""
        return sum(len(rows) for rows in self._rows.values())

    def add_clip(self, clip: dict[str, Any], track: dict[str, Any]) -> None:
        self._add({"clips": clip, "tracks": track})

    def add_video(self, video: dict[str, Any]) -> None:
        self._add({"videos": video})

    def _add(self, rows: Mapping[str, dict[str, Any]]) -> None:
        for table, row in rows.items():
            # Validate now, so a bad row fails its own clip rather than the whole batch later.
            records_to_table([row], self.schemas[table])
            self._rows[table].append(row)
        self._since = self._since or time.monotonic()
        if len(self._rows["clips"]) >= self.max_clips or time.monotonic() - self._since >= self.max_wait_s:
            self.flush()

    def flush(self) -> str | None:
        """Commit what is held as one batch; returns its key (None when nothing was held)."""
        if not self.held:
            return None
        tables = {t: records_to_table(rows, self.schemas[t]) for t, rows in self._rows.items() if rows}
        key = self.root.commit(tables)
        self._rows = {t: [] for t in self._rows}
        self._since = None
        return key
