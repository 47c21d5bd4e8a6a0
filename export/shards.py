"""Training shards: the accepted clips of a dataset root as Parquet files made for streaming.

Layout of ``curate export ROOT --name NAME``::

    ROOT/exports/NAME/manifest.json              what was exported, and what produced it
    ROOT/exports/NAME/<split>-<i:05d>.parquet    clips of one split, row groups of a few clips each

One row per clip (:func:`manifests.schema.shard_schema`, channel names in the file metadata):
16 kHz mono PCM and the blendshapes on the clip's constant frame grid, ``_neutral`` dropped.
The audio is read ``sync_offset_frames / fps`` seconds after the frames' span, which corrects
the measured offset (+k: the audio lagged the video by k frames). Frames without a face are
interpolated from their neighbours and marked in ``face_present``.

Groups: a clip's group is its video, with videos merged when the current decisions mark one's
clip as a duplicate of the other's (``duplicate_of``); an SQL expression can replace it. A split
is a function of the group alone (a hash), so no group is in two splits and a group keeps its
split when clips are added; with very few groups the train split is made non-empty.

The export is written into a temporary folder and renamed into place: it appears whole or not at
all. An existing export is never replaced: a new one takes a new name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import duckdb
import numpy as np
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm import tqdm

from export.tracks import TrackLocation, locate, read_column
from extractors.registry import dataset_schemas, extractor_classes
from ingest.media import SPEECH_SR_HZ, read_audio
from ingest.sources import localize
from manifests.arkit_map import Calibration, CalibrationError
from manifests.schema import BLENDSHAPE_NAMES, SCHEMA_VERSION, SHARD_BLENDSHAPE_NAMES, shard_schema
from manifests.store import existing_root, records_to_table
from manifests.views import connect, lock_down, not_read_only
from settings.config import QUERY_MEMORY_MB
from settings.errors import NothingToWorkOn

SPLITS = ("train", "val", "test")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ExportError(NothingToWorkOn, ValueError):
    """The export cannot be made: a bad option or predicate, nothing to export, or the name is taken."""


class ClipUnusable(Exception):
    """One selected clip cannot be exported ("code: detail"); it is left out and listed in the manifest."""


class ExportOptions(BaseModel):
    """What ``curate export`` selects and how it lays the shards out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="folder under ROOT/exports/")
    where: str | None = Field(
        None, description="SQL predicate over c (clips), v (videos), d (decision), m (clip_emotion)"
    )
    group: str | None = Field(None, description="SQL expression giving the group id; default: merged video")
    split_by: Literal["video", "identity"] = Field(
        "video",
        description="what no two splits share: the video (twins merged), or also the person (a speaker_id "
        "tag, else the clip's identity_id): videos and people linked by a clip form one group",
    )
    max_per_identity_s: float | None = Field(
        None, gt=0, description="seconds of clips kept per person at most (speaker_id tag, else identity_id)"
    )
    test: str | None = Field(
        None,
        description="SQL predicate over c, v, d: the groups of the clips it holds for form the test split "
        "(the others are split into train and val by hash; test_fraction is then unused)",
    )
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    clips_per_row_group: int = Field(8, ge=1, description="the unit that readers spread over workers")
    calibration: str | None = Field(
        None, description="calibration JSON (curate calibrate) applied to the blendshapes; None: as measured"
    )
    clips_per_file: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _check(self) -> ExportOptions:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"export name {self.name!r}: use letters, digits, '.', '_' and '-'")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave a share for train")
        if self.group and self.split_by != "video":
            raise ValueError("--group and --split-by identity both set the groups: give one")
        return self


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    splits: dict[str, dict[str, Any]]  # split -> clips, seconds, groups, files (as in the manifest)
    skipped: dict[str, str]  # clip id -> "reason: detail"
    jobs_by_node: dict[str, int] = field(
        default_factory=dict
    )  # cluster node -> shard jobs it ran; {}: in process

    def to_text(self) -> str:
        lines = [str(self.path)]
        if self.jobs_by_node:
            jobs = sum(self.jobs_by_node.values())
            lines.append(f"  written by {jobs} job(s) on {len(self.jobs_by_node)} node(s)")
        for s in SPLITS:
            info = self.splits[s]
            lines.append(
                f"  {s:<6}{info['clips']:>6} clips {len(info['groups']):>5} groups {info['seconds']:>9.1f} s"
            )
        lines += [f"  skipped {clip}: {reason}" for clip, reason in sorted(self.skipped.items())]
        lines += [f"warning: {w}" for w in self.warnings()]
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """What a user should hear about the splits: an empty val or test split, and how to fill it."""
        groups = sum(len(info["groups"]) for info in self.splits.values())
        hints = {
            "val": "training then keeps every channel's gain at 1 and reports no val loss; "
            "--val 0.2 puts a share of the groups there",
            "test": "`curate eval` needs --split train (or val), or export with --test 0.2 or "
            "--test-where SQL (e.g. held-out speakers)",
        }
        return [
            f"the {split} split is empty ({groups} group(s) in all): {hint}"
            for split, hint in hints.items()
            if not self.splits[split]["clips"]
        ]


def _unit(group: str) -> float:
    """A stable number in [0, 1) for ``group``."""
    return int(hashlib.sha256(group.encode()).hexdigest()[:16], 16) / 2**64


def assign_splits(
    groups: Iterable[str], val_fraction: float, test_fraction: float, test_groups: set[str] | None = None
) -> dict[str, str]:
    """Group -> split by a hash of the group alone: test below ``test_fraction``, then val, then train.

    With ``test_groups`` (chosen, e.g. held-out speakers) exactly those are test and the rest are
    split into val and train by the hash. When no group lands in train (very few groups), the
    group with the highest hash among the others is moved there.
    """
    units = {g: _unit(g) for g in groups}
    if test_groups is not None:
        splits = {
            g: "test" if g in test_groups else "val" if u < val_fraction else "train"
            for g, u in units.items()
        }
    else:
        splits = {
            g: "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
            for g, u in units.items()
        }
    movable = [g for g in units if not test_groups or g not in test_groups]
    if movable and "train" not in splits.values():
        splits[max(movable, key=lambda g: units[g])] = "train"
    return splits


def merge_duplicates(videos: Iterable[str], pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Video -> group: videos joined by (duplicate video, kept video) pairs share the group named by
    the smallest video id among them."""
    parent = {v: v for v in videos}

    def find(v: str) -> str:
        parent.setdefault(v, v)
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {v: find(v) for v in list(parent)}


def _selected(con: duckdb.DuckDBPyConnection, options: ExportOptions) -> list[dict[str, Any]]:
    """The accepted clips the predicate keeps (no per-frame arrays), with their group."""
    group = f"cast(({options.group}) as varchar)" if options.group else "null::varchar"
    test = f"coalesce(({options.test}), false)" if options.test else "false"
    sql = f"""
        select c.clip_id, c.video_id, v.uri, v.has_audio, c.start_s, c.fps, c.sync_offset_frames, v.run_id,
               d.decision_set, d.config_hash, {group} as group_override, {test} as in_test,
               m.emotion, m.emotion_confidence, m.emotion_intensity, c.duration_s,
               coalesce('speaker:' || v.source_tags['speaker_id'], 'identity:' || c.identity_id) as person
        from current_decisions d join clips c on c.clip_id = d.clip_id
             join videos v on v.video_id = c.video_id
             join clip_emotion m on m.clip_id = c.clip_id
        where d.verdict = 'accept' and ({options.where or "true"})
        order by c.clip_id"""
    try:
        refused = not_read_only(con, sql)
        if refused:
            raise ExportError(
                f"--where, --group and --test must be SQL expressions that only read: {refused}"
            )
        rows = con.sql(sql).to_arrow_table().to_pylist()
    except duckdb.Error as exc:
        raise ExportError(f"selecting clips failed (check --where, --group and --test): {exc}") from None
    if options.group:
        missing = [r["clip_id"] for r in rows if r["group_override"] is None]
        if missing:
            raise ExportError(f"--group gives null for {len(missing)} clips, e.g. {missing[0]}")
        for r in rows:
            r["group_id"] = r["group_override"]
    else:
        pairs = con.sql(
            """select c.video_id, k.video_id from current_decisions d
               join clips c on c.clip_id = d.clip_id join clips k on k.clip_id = d.duplicate_of"""
        ).fetchall()
        if options.split_by == "identity":  # a person links the videos they are in
            pairs += [(r["video_id"], r["person"]) for r in rows if r["person"]]
        group_of = merge_duplicates((r["video_id"] for r in rows), pairs)
        for r in rows:
            r["group_id"] = group_of[r["video_id"]]
    return rows


def capped_per_person(
    rows: Sequence[dict[str, Any]], max_s: float
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``rows`` with each person's clips (``person``: speaker tag or identity; clips of none are
    not capped) kept up to ``max_s`` seconds in all, in an order fixed by a hash of the clip id
    (the same clips stay when clips are added elsewhere), and the clips left out with why."""
    kept: list[dict[str, Any]] = []
    left: dict[str, str] = {}
    seconds: dict[str, float] = defaultdict(float)
    for r in sorted(rows, key=lambda r: _unit(r["clip_id"])):
        person = r["person"]
        if person is not None and seconds[person] + (r["duration_s"] or 0.0) > max_s:
            left[r["clip_id"]] = f"person_cap: {person} has {seconds[person]:.1f} s, the cap is {max_s:g} s"
            continue
        if person is not None:
            seconds[person] += r["duration_s"] or 0.0
        kept.append(r)
    return sorted(kept, key=lambda r: r["clip_id"]), left


def _blendshape_frames(frames: Sequence[Sequence[float] | None] | None) -> tuple[np.ndarray, np.ndarray]:
    """Shard channels per frame, shape (n_frames, 51) float32, gaps interpolated, and the face mask
    (n_frames,). :class:`ClipUnusable` when no frame has a face."""
    index = [BLENDSHAPE_NAMES.index(n) for n in SHARD_BLENDSHAPE_NAMES]
    present = np.array([f is not None for f in frames or []], bool)
    if frames is None or not present.any():
        raise ClipUnusable("no_face: no frame has a face")
    values = np.zeros((len(frames), len(index)), np.float32)
    values[present] = np.asarray([f for f in frames if f is not None], np.float32)[:, index]
    k = np.arange(len(frames))
    for c in range(len(index)):
        values[~present, c] = np.interp(k[~present], k[present], values[present, c])
    return values, present


def clip_audio(path: Path, start_s: float, n_samples: int) -> np.ndarray:
    """``n_samples`` of 16 kHz mono from ``start_s`` (source seconds; may be negative), zeros where
    the source has no audio; float32, shape (n_samples,)."""
    lead = min(round(max(-start_s, 0.0) * SPEECH_SR_HZ), n_samples)
    audio = read_audio(path, max(start_s, 0.0), start_s + n_samples / SPEECH_SR_HZ)[: n_samples - lead]
    return np.concatenate(
        [np.zeros(lead, np.float32), audio, np.zeros(n_samples - lead - len(audio), np.float32)]
    )


def _record(
    row: Mapping[str, Any],
    frames: Sequence[Sequence[float] | None] | None,
    split: str,
    staging: Path,
    calibration: Calibration | None,
) -> dict[str, Any]:
    """The shard row of one clip (``frames``: its stored blendshapes per frame), its blendshapes
    mapped by ``calibration`` if given; :class:`ClipUnusable` when it cannot be made."""
    values, present = _blendshape_frames(frames)
    if calibration is not None:
        values = calibration.apply(values, SHARD_BLENDSHAPE_NAMES)
    fps, offset = float(row["fps"]), row["sync_offset_frames"]
    audio_offset_s = (offset or 0) / fps
    n_samples = round(len(values) / fps * SPEECH_SR_HZ)
    try:
        audio = (
            clip_audio(localize(row["uri"], staging), row["start_s"] + audio_offset_s, n_samples)
            if row["has_audio"] is not False
            else np.zeros(n_samples, np.float32)  # a video without sound: silence, as documented
        )
    except (OSError, av.error.FFmpegError) as exc:
        raise ClipUnusable(f"unreadable_audio: {exc}") from exc
    return {
        "clip_id": row["clip_id"],
        "video_id": row["video_id"],
        "group_id": row["group_id"],
        "split": split,
        "source_uri": row["uri"],
        "start_s": row["start_s"],
        "fps": fps,
        "n_frames": len(values),
        "sample_rate_hz": SPEECH_SR_HZ,
        "sync_offset_frames": offset,
        "audio_offset_s": audio_offset_s,
        "audio_pcm16": np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16),
        "blendshapes": list(values),
        "face_present": present,
        "neutral": np.median(values[present], axis=0).astype(np.float32),
        "emotion": row["emotion"],
        "emotion_confidence": row["emotion_confidence"],
        "emotion_intensity": row["emotion_intensity"],
        "decision_set": row["decision_set"],
        "config_hash": row["config_hash"],
    }


def _in_tracks(row: Mapping[str, Any]) -> tuple[bool, TrackLocation | None]:
    return row["tracks"] is None, row["tracks"]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@dataclass(frozen=True)
class ShardJob:
    """One shard file to write: clips of one split (each row with its ``tracks`` location)."""

    split: str
    index: int
    rows: Sequence[Mapping[str, Any]]
    folder: Path
    staging: Path
    clips_per_row_group: int
    calibration: Calibration | None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.split}-{self.index:05d}.parquet"


@dataclass(frozen=True)
class ShardResult:
    split: str
    written: dict[str, Any] | None  # file name, clips, row groups, seconds of audio; None: no clip made it
    skipped: dict[str, str]  # clip id -> "reason: detail"
    clips: int  # clips tried


def write_shard(job: ShardJob) -> ShardResult:
    """Write one shard file of row groups, holding one row group at a time. A clip that cannot be
    made is left out, with its reason. Runs in any process that sees the root and the sources."""
    schema = shard_schema()
    skipped: dict[str, str] = {}
    written: dict[str, Any] = {"file": job.path.name, "clips": 0, "row_groups": 0, "seconds": 0.0}
    with pq.ParquetWriter(job.path, schema, compression="zstd") as writer:
        for group_rows in _chunks(job.rows, job.clips_per_row_group):
            frames = read_column(
                {r["clip_id"]: r["tracks"] for r in group_rows if r["tracks"]}, "blendshapes"
            )
            records = []
            for r in group_rows:
                try:
                    if r["clip_id"] not in frames:
                        raise ClipUnusable("no_tracks: the root holds no tracks row for it")
                    records.append(_record(r, frames[r["clip_id"]], job.split, job.staging, job.calibration))
                except ClipUnusable as exc:
                    skipped[r["clip_id"]] = str(exc)
            if records:
                writer.write_table(records_to_table(records, schema), row_group_size=len(records))
                written["clips"] += len(records)
                written["row_groups"] += 1
                written["seconds"] += sum(r["n_frames"] / r["fps"] for r in records)
    if not written["clips"]:
        job.path.unlink()
        return ShardResult(job.split, None, skipped, len(job.rows))
    _fsync(job.path)
    return ShardResult(job.split, written, skipped, len(job.rows))


#: Runs a function over jobs, yielding results in any order: the builtin ``map`` or a cluster's.
MapFn = Callable[[Callable[[ShardJob], ShardResult], Iterable[ShardJob]], Iterable[ShardResult]]


def export(
    root_path: str | Path, options: ExportOptions, progress: bool = False, map_fn: MapFn = map
) -> ExportSummary:
    """Write the training shards of the root's accepted clips to ``ROOT/exports/<name>``;
    ``progress`` shows a bar over the clips. ``map_fn`` runs the shard files' jobs (the default
    one after another here; the Ray executor's spreads them over a cluster); the manifest is
    written last, by this process, and the export renamed into place."""
    root = existing_root(root_path)
    target = root.path / "exports" / options.name
    if target.exists():
        raise ExportError(f"export {target} exists; exports are never replaced: choose another --name")
    try:
        calibration = Calibration.load(options.calibration) if options.calibration else None
    except CalibrationError as exc:
        raise ExportError(str(exc)) from None
    con = connect(root, dataset_schemas())
    # --where, --group and --test are user SQL: they read the root and nothing else, in bounded memory
    lock_down(con, root, memory_mb=QUERY_MEMORY_MB)
    rows = _selected(con, options)
    capped: dict[str, str] = {}
    if options.max_per_identity_s is not None:
        rows, capped = capped_per_person(rows, options.max_per_identity_s)
    if not rows:
        why = f" ({len(capped)} left out by --max-per-identity-s)" if capped else ""
        raise ExportError(f"no clip of {root.path} is accepted and matches the selection{why}")
    where = locate(root, (r["clip_id"] for r in rows))
    for r in rows:
        r["tracks"] = where.get(r["clip_id"])
    rates = sorted({r["fps"] for r in rows})
    if len(rates) != 1:
        raise ExportError(f"the selected clips have several frame rates {rates}: narrow the selection")
    chosen = {r["group_id"] for r in rows if r["in_test"]} if options.test else None
    split_of = assign_splits(
        {r["group_id"] for r in rows}, options.val_fraction, options.test_fraction, chosen
    )
    tmp = target.parent / f".{options.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir(parents=True)
    skipped: dict[str, str] = {}
    try:
        by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_split[split_of[r["group_id"]]].append(r)
        jobs = [
            ShardJob(
                split, index, chunk, tmp, root.path / "_staging", options.clips_per_row_group, calibration
            )
            for split in SPLITS
            # In tracks order, so that a shard reads few row groups of few parts.
            for index, chunk in enumerate(
                _chunks(sorted(by_split[split], key=_in_tracks), options.clips_per_file)
            )
        ]
        files: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        with tqdm(total=len(rows), desc="curate export", unit="clip", disable=not progress) as bar:
            for result in map_fn(write_shard, jobs):
                if result.written:
                    files[result.split].append(result.written)
                skipped.update(result.skipped)
                bar.update(result.clips)
        for split_files in files.values():
            split_files.sort(key=lambda f: f["file"])
        if len(skipped) == len(rows):
            raise ExportError(f"no selected clip could be exported: {skipped}")
        kept = [r for r in rows if r["clip_id"] not in skipped]
        groups = {s: sorted({r["group_id"] for r in kept if split_of[r["group_id"]] == s}) for s in SPLITS}
        manifest = {
            "name": options.name,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "root": str(root.path.resolve()),
            "schema_version": SCHEMA_VERSION,
            "options": options.model_dump(),
            "fps": rates[0],
            "sample_rate_hz": SPEECH_SR_HZ,
            "blendshape_names": list(SHARD_BLENDSHAPE_NAMES),
            "splits": {
                s: {
                    "clips": sum(f["clips"] for f in files[s]),
                    "seconds": sum(f["seconds"] for f in files[s]),
                    "groups": groups[s],
                    "files": files[s],
                }
                for s in SPLITS
            },
            "decision_sets": sorted({r["decision_set"] for r in kept}),
            "config_hashes": sorted({r["config_hash"] for r in kept if r["config_hash"]}),
            "runs": sorted({r["run_id"] for r in kept if r["run_id"]}),
            "extractor_versions": {name: cls.version for name, cls in extractor_classes().items()},
            "skipped": skipped,
            "capped": capped,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _fsync(tmp / "manifest.json")
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    # A cluster's map counts the jobs each node ran (curate.ray_executor.RayMap); the builtin has none.
    return ExportSummary(target, manifest["splits"], skipped, dict(getattr(map_fn, "nodes", {})))
