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
import time
from dataclasses import dataclass, field
from pathlib import Path

from manifests.lock import hold
from manifests.store import existing_root

TABLES = ("videos", "clips", "tracks", "decisions", "inputs")


@dataclass
class CheckReport:
    root: str  # a local path or an object-store URL
    parts: dict[str, int]  # table -> parts
    damaged: dict[str, list[str]]  # table -> damaged parts, relative to the root
    damaged_records: dict[str, str] = field(default_factory=dict)  # commit record -> why it is left out
    recovered_records: dict[str, str] = field(default_factory=dict)  # one copy of a record damaged -> why
    sweep_refused: bool = False  # a quarantined checkpoint cannot be read: no part is deleted
    unreferenced: list[str] = field(default_factory=list)  # parts no live record names
    links: list[str] = field(default_factory=list)  # symbolic links anywhere in a local root, relative to it
    moved: list[tuple[str, str]] = field(
        default_factory=list
    )  # (from, to) relative to the root, when repaired

    @property
    def clean(self) -> bool:
        return not (
            any(self.damaged.values()) or self.damaged_records or self.recovered_records or self.links
        )

    def to_text(self) -> str:
        lines = [f"check {self.root}"]
        for table in TABLES:
            bad = self.damaged[table]
            lines.append(f"  {table:<10} {self.parts[table]:>7} parts, {len(bad)} damaged")
            lines += [f"    damaged: {p}" for p in bad]
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
            f"  symbolic link {link}: nothing is written or deleted through it; replace it with what it points to"
            for link in self.links
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


def links_in(folder: Path) -> list[str]:
    """Every symbolic link under ``folder`` (none followed), relative to it, sorted."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        found += [
            os.path.relpath(os.path.join(top, n), folder)
            for n in dirs + files
            if os.path.islink(os.path.join(top, n))
        ]
    return sorted(found)


def check_root(path: str | Path, repair: bool = False) -> CheckReport:
    """Report the damaged parts of every table of the root at ``path`` (a folder or an
    object-store URL); with ``repair``, move them aside (holding the root's lock: raises
    :class:`~manifests.lock.RootBusy` while a run writes it)."""
    root = existing_root(path)
    snap = root.snapshot()
    report = CheckReport(
        root.uri,
        {t: len(snap.files(t)) for t in TABLES},
        {t: root.damaged_rels(t, snap) for t in TABLES},
        dict(snap.damaged),
        {**snap.recovered, **root.damaged_copies(snap)},
        root.quarantine_names() is None,
        root.unreferenced(snap),
        [] if root.remote else links_in(root.path),
    )
    if repair and (any(report.damaged.values()) or report.damaged_records or report.recovered_records):
        with hold(root, "check-" + time.strftime("%Y%m%dT%H%M%S")):
            report.moved = (
                root.restore_log(report.recovered_records) + root.quarantine_records(snap) + root.quarantine()
            )
    return report
