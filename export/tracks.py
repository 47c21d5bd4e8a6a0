"""Where chosen clips' per-frame arrays are in a root's ``tracks`` parts, and reading them back a
row group at a time (a compacted part holds thousands of clips: a clip is never read alone)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from manifests.store import DatasetRoot


@dataclass(frozen=True, order=True)
class TrackLocation:
    """A clip's tracks row: the part's path, its row group and the row within that group."""

    part: str
    row_group: int
    row: int


def locate(root: DatasetRoot, clip_ids: Iterable[str]) -> dict[str, TrackLocation]:
    """The location of each of ``clip_ids`` that has a tracks row (reads only the ``clip_id`` column)."""
    wanted = set(clip_ids)
    found: dict[str, TrackLocation] = {}
    for part in root.readable_parts("tracks"):
        parquet = pq.ParquetFile(part)
        for group in range(parquet.num_row_groups):
            ids = parquet.read_row_group(group, columns=["clip_id"])["clip_id"].to_pylist()
            for row, clip in enumerate(ids):
                if clip in wanted:
                    found[clip] = TrackLocation(str(part), group, row)
    return found


def read_column(locations: Mapping[str, TrackLocation], column: str) -> dict[str, Any]:
    """Clip id -> its value of ``column``, each needed row group read once."""
    by_group: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for clip, where in locations.items():
        by_group[(where.part, where.row_group)].append((clip, where.row))
    values: dict[str, Any] = {}
    for (part, group), rows in sorted(by_group.items()):
        data = pq.ParquetFile(part).read_row_group(group, columns=[column])[column]
        values.update({clip: data[row].as_py() for clip, row in rows})
    return values
