"""``curate check``: find the damaged parts of a dataset root and, asked to, move them aside.

A damaged part (truncated, overwritten: not a complete Parquet file) is left out by every reader
and its unit is redone by the next run anyway; repairing moves it into ``ROOT/_quarantine/``
with the parts that marked its clip and video done, so the root holds only whole files and the
next ``curate run`` recomputes exactly those clips. A damaged commit record (not JSON, not a
record, or naming a file that is not a part of a table folder) is left out by every reader too;
each record and checkpoint has a second copy in ``_log/_copy/``, which readers use when the
first is damaged, and repairing rewrites the first from it. Only a record whose copies are both
damaged is left out; repairing moves it into ``ROOT/_quarantine/_log/``, and nothing deletes the
parts a quarantined record names (or, for a checkpoint, any part): the next run redoes their
clips beside them. Parts no record names are listed (a killed writer's leftovers, or the parts
of a deleted record).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from manifests.lock import hold
from manifests.store import DatasetRoot, existing_root

TABLES = ("videos", "clips", "tracks", "decisions", "inputs")


@dataclass
class CheckReport:
    root: str  # a local path or an object-store URL
    parts: dict[str, int]  # table -> parts
    damaged: dict[str, list[str]]  # table -> damaged parts, relative to the root
    damaged_records: dict[str, str] = field(default_factory=dict)  # commit record -> why it is left out
    recovered_records: dict[str, str] = field(default_factory=dict)  # one copy of a record damaged -> why
    unreadable: dict[str, str] = field(
        default_factory=dict
    )  # whole part of another schema, or bad pages -> why
    sweep_refused: bool = False  # a quarantined checkpoint cannot be read: no part is deleted
    unreferenced: list[str] = field(default_factory=list)  # parts no live record names
    strange: dict[str, str] = field(
        default_factory=dict
    )  # link, FIFO, device anywhere in a local root -> kind
    moved: list[tuple[str, str]] = field(
        default_factory=list
    )  # (from, to) relative to the root, when repaired

    @property
    def clean(self) -> bool:
        return not (
            any(self.damaged.values())
            or self.damaged_records
            or self.recovered_records
            or self.unreadable
            or self.strange
        )

    def to_text(self) -> str:
        lines = [f"check {self.root}"]
        for table in TABLES:
            bad = self.damaged[table]
            lines.append(f"  {table:<10} {self.parts[table]:>7} parts, {len(bad)} damaged")
            lines += [f"    damaged: {p}" for p in bad]
        lines += [f"  damaged part {p}: {why}" for p, why in self.unreadable.items()]
        lines += [f"  damaged commit record {r}: {why}" for r, why in self.damaged_records.items()]
        lines += [
            f"  damaged commit record {r}: {why}; its other copy is whole, nothing lost"
            for r, why in self.recovered_records.items()
        ]
        if self.sweep_refused:
            lines.append(
                "  a quarantined checkpoint cannot be read: no part is deleted until it is restored"
                " from a backup into _log/ or removed from _quarantine/_log by hand"
            )
        lines += [
            f"  {kind} {rel}: nothing is written, deleted or read through it; replace it with a real file or folder"
            for rel, kind in self.strange.items()
        ]
        if self.unreferenced:
            lines.append(
                f"  {len(self.unreferenced)} part(s) no commit record names (a killed writer's leftovers,"
                " or the parts of a deleted record: their rows are not in the root)"
            )
            lines += [f"    {p}" for p in self.unreferenced[:20]]
        if self.moved:
            lines.append(f"  moved aside: {len(self.moved)} files (rerun `curate run` to redo their clips)")
            lines += [f"    {a} -> {b}" for a, b in self.moved]
        elif not self.clean:
            lines.append("  `curate check ROOT --repair` moves them aside; the next run redoes their clips")
        return "\n".join(lines)


#: What an entry of a root may be besides a regular file or a real folder, by its mode.
STRANGE_KINDS = (
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def strange_in(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (no link followed) that is a symbolic link, FIFO, device or
    socket, relative to it and sorted -> its kind; ``_quarantine`` is left out (set aside)."""
    found = {}
    for top, dirs, files in os.walk(folder, followlinks=False):
        if os.path.relpath(top, folder).split(os.sep)[0] == "_quarantine":
            continue
        for name in dirs + files:
            mode = os.lstat(os.path.join(top, name)).st_mode
            kind = next((k for test, k in STRANGE_KINDS if test(mode)), None)
            if kind is not None:
                found[os.path.relpath(os.path.join(top, name), folder)] = kind
    return dict(sorted(found.items()))


def _set_aside(root: DatasetRoot, strange: Mapping[str, str]) -> list[tuple[str, str]]:
    """Move each entry of ``strange`` (the entry itself: a link, never what it points to) into
    ``ROOT/_quarantine/_entries/``; returns (from, to) relative paths."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    moved = []
    for rel in strange:
        source = rel.replace(os.sep, "/")
        if os.path.lexists(root.path / source):  # a FIFO part is already aside with its batch
            target = f"_quarantine/_entries/{source.replace('/', '__')}.{stamp}"
            root.storage.move(source, target)
            moved.append((source, target))
    return moved


def check_root(
    path: str | Path,
    repair: bool = False,
    schemas: Mapping[str, pa.Schema] | None = None,
    pages: bool = True,
) -> CheckReport:
    """Report the damaged parts of every table of the root at ``path`` (a folder or an
    object-store URL): with ``schemas`` (table -> schema), every whole part of those tables is
    checked against its table's schema and (``pages``) read through, every page decoded
    (:meth:`~manifests.store.DatasetRoot.verify_part`).
    With ``repair``, move them aside (holding the root's lock: raises
    :class:`~manifests.lock.RootBusy` while a run writes it)."""
    root = existing_root(path)
    snap = root.snapshot()
    report = CheckReport(
        root.uri,
        parts={t: len(snap.files(t)) for t in TABLES},
        damaged={t: root.damaged_rels(t, snap) for t in TABLES},
        damaged_records=dict(snap.damaged),
        recovered_records={**snap.recovered, **root.damaged_copies(snap)},
        sweep_refused=root.quarantine_names() is None,
        unreferenced=root.unreferenced(snap),
        strange={} if root.remote else strange_in(root.path),
    )
    for table, schema in (schemas or {}).items():
        for rel in root.readable_rels(table, snap):
            why = root.verify_part(rel, schema) if pages else root.part_problem(rel, schema)
            if why is not None:
                report.unreadable[rel] = why
    if repair and not report.clean:
        with hold(root, "check-" + time.strftime("%Y%m%dT%H%M%S")):
            report.moved = (
                root.restore_log(report.recovered_records)
                + root.quarantine_records(snap)
                + root.quarantine(also=report.unreadable)
                + _set_aside(root, report.strange)
            )
    return report
