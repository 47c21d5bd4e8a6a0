"""Streaming the training shards of ``curate export`` into PyTorch.

The unit of work is a row group of a shard file (a few clips). In each epoch the units are put in
one order (the same on every rank: seeded by the epoch) and unit ``i`` of it goes to the reader
(rank ``r``, DataLoader worker ``w``) with ``i % (world_size * workers) == r * workers + w``: the
readers' units are disjoint and together cover the split. A reader holding nothing yields nothing.

- :class:`WindowStream` (training): random windows of ``window_frames`` frames, a few per clip and
  epoch, through a shuffle buffer; epoch after epoch without end (training counts steps). Its
  inputs are the cached speech features (:mod:`generator.features`) and its targets the
  speaker-relative blendshapes (each clip's minus its neutral).
- :class:`SequenceStream` (validation, evaluation): every clip whole, in file order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from generator.features import FrameFeatures, cache_path, read_cached, write_cached
from settings.errors import NothingToWorkOn

Unit = tuple[Path, int]  # (shard file, row group)


class ShardError(NothingToWorkOn, ValueError):
    """An export folder is missing, incomplete, has no clip in the asked split, or does not fit the
    model it is used with."""


@dataclass(frozen=True)
class Clip:
    """One exported clip; frame ``k`` lines up with audio sample ``k * sample_rate_hz / fps``."""

    clip_id: str
    group_id: str
    fps: float
    audio: np.ndarray  # (n_samples,) float32 in [-1, 1], 16 kHz mono
    blendshapes: np.ndarray  # (n_frames, n_channels) float32
    face_present: np.ndarray  # (n_frames,) bool; False: the frame's values were interpolated
    neutral: np.ndarray  # (n_channels,) float32: the clip's resting pose (median over frames with a face)
    features: np.ndarray | None = None  # (n_frames, dim) float32 speech features, when asked for

    @property
    def motion(self) -> np.ndarray:
        """Speaker-relative targets: blendshapes minus the neutral, (n_frames, n_channels)."""
        return self.blendshapes - self.neutral


@dataclass(frozen=True)
class Export:
    """An export folder: its manifest, channel names, rates and the shard files of each split."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Export:
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except FileNotFoundError:
            raise ShardError(f"{path} is not an export: no manifest.json (run `curate export`)") from None
        return cls(path, manifest)

    @property
    def names(self) -> list[str]:
        return list(self.manifest["blendshape_names"])

    @property
    def fps(self) -> float:
        return float(self.manifest["fps"])

    @property
    def sample_rate_hz(self) -> int:
        return int(self.manifest["sample_rate_hz"])

    def files(self, split: str) -> list[Path]:
        """Shard files of ``split``; :class:`ShardError` when it has none."""
        splits = self.manifest["splits"]
        if split not in splits:
            raise ShardError(f"unknown split {split!r}: one of {sorted(splits)}")
        files = self.shard_files(split)
        if not files:
            have = {s: v["clips"] for s, v in splits.items()}
            filled = [s for s, n in have.items() if n]
            hint = f"; try --split {filled[0]}, or export with --test 0.2" if filled else ""
            raise ShardError(f"split {split!r} of {self.path} has no clips (clips per split: {have}){hint}")
        return files

    def shard_files(self, split: str | None = None) -> list[Path]:
        """Shard files of ``split`` (None: of every split), possibly none."""
        splits = self.manifest["splits"]
        return [self.path / f["file"] for s in ([split] if split else splits) for f in splits[s]["files"]]


def ensure_features(
    export: Export,
    kind: str,
    make: Callable[[], FrameFeatures],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Compute and cache the ``kind`` features of every shard file of ``export`` that has none yet.

    ``make`` builds the feature maker (called once, only when a file is missing); ``progress`` is
    called with the number of clips after each file made. Returns the number of files made.
    """
    maker: FrameFeatures | None = None
    made = 0
    for shard in export.shard_files():
        path = cache_path(export.path, kind, shard)
        if path.exists():
            continue
        maker = maker or make()
        clips = [c for g in range(pq.ParquetFile(shard).num_row_groups) for c in read_unit((shard, g))]
        write_cached(path, {c.clip_id: maker(c.audio, c.fps, len(c.blendshapes)) for c in clips})
        made += 1
        if progress:
            progress(len(clips))
    return made


def units_of(files: Sequence[Path]) -> list[Unit]:
    """Every (file, row group) of ``files``, in order."""
    return [(f, g) for f in files for g in range(pq.ParquetFile(f).num_row_groups)]


def reader_units(
    units: Sequence[Unit], order_seed: int | None, rank: int, world_size: int, worker: int, workers: int
) -> list[Unit]:
    """The units of reader (``rank``, ``worker``): disjoint from every other reader's, all of them
    covering ``units``. ``order_seed``: shuffle the order first (None: keep it)."""
    order = np.arange(len(units))
    if order_seed is not None:
        np.random.default_rng(order_seed).shuffle(order)
    me, readers = rank * workers + worker, world_size * workers
    return [units[int(u)] for i, u in enumerate(order) if i % readers == me]


def _lists(column: pa.ChunkedArray, dtype: type, width: int | None = None) -> list[np.ndarray]:
    """Rows of a list column as arrays; ``width``: the rows are lists of fixed-size lists, (n, width)."""
    array = column.combine_chunks()
    lengths = array.value_lengths().to_numpy(zero_copy_only=False)
    flat = array.flatten()
    if width:
        flat = flat.flatten()
    values = flat.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    parts = np.split(values, np.cumsum(lengths * (width or 1))[:-1])
    return [p.reshape(-1, width) if width else p for p in parts]


def clip_neutral(blendshapes: np.ndarray, face_present: np.ndarray) -> np.ndarray:
    """Per channel the median over frames with a face (all frames when none has one), (n_channels,)."""
    held = blendshapes[face_present] if face_present.any() else blendshapes
    return np.median(held, axis=0).astype(np.float32)


def read_unit(unit: Unit, features: str | None = None) -> list[Clip]:
    """The clips of one row group; ``features``: attach the cached features of that kind."""
    path, group = unit
    shard = pq.ParquetFile(path)
    width = len(shard.schema_arrow.metadata[b"blendshape_names"].decode().split(","))
    columns = ["clip_id", "group_id", "fps", "audio_pcm16", "blendshapes", "face_present"]
    has_neutral = "neutral" in shard.schema_arrow.names  # older exports have none
    table = shard.read_row_group(group, columns=columns + ["neutral"] * has_neutral)
    audio = _lists(table.column("audio_pcm16"), np.float32)
    frames = _lists(table.column("blendshapes"), np.float32, width)
    present = _lists(table.column("face_present"), np.bool_)
    if has_neutral:
        neutrals = [
            n.copy() for n in _lists(table.column("neutral"), np.float32)
        ]  # writable: torch reads them
    else:
        neutrals = [clip_neutral(f, p) for f, p in zip(frames, present, strict=True)]
    cached = read_cached(cache_path(path.parent, features, path)) if features else {}
    return [
        Clip(
            clip_id,
            group_id,
            fps,
            audio[i] / 32767.0,
            frames[i],
            present[i],
            neutrals[i],
            cached.get(clip_id),
        )
        for i, (clip_id, group_id, fps) in enumerate(
            zip(
                table.column("clip_id").to_pylist(),
                table.column("group_id").to_pylist(),
                table.column("fps").to_pylist(),
                strict=True,
            )
        )
    ]


def _rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size): as given, else from ``torch.distributed`` when initialised, else (0, 1)."""
    if rank is not None and world_size is not None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class _ShardStream(IterableDataset):
    def __init__(
        self,
        files: Sequence[Path],
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        features: str | None = None,
    ):
        self.units = units_of(files)
        self.seed = seed
        self.rank, self.world_size = _rank(rank, world_size)
        self.features = features

    def _clips(self, order_seed: int | None) -> Iterator[Clip]:
        """This reader's clips; ``order_seed``: shuffle the unit order with it (None: file order)."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for unit in reader_units(self.units, order_seed, self.rank, self.world_size, worker, workers):
            yield from read_unit(unit, self.features)


class SequenceStream(_ShardStream):
    """Every clip of the files whole (validation and evaluation), in file order; ``features``:
    attach the cached features of that kind (:func:`ensure_features` first)."""

    def __iter__(self) -> Iterator[Clip]:
        return self._clips(order_seed=None)


class WindowStream(_ShardStream):
    """Random training windows without end: each epoch, per clip ``max(1, n_frames // window_frames)``
    windows at random starts, mixed through a buffer of ``shuffle_buffer`` windows.

    Items: ``features`` (window_frames, dim) float32 (the cached ``features`` of that kind),
    ``neutral`` (n_channels,) float32, the clip's resting pose,
    ``target`` (window_frames, n_channels) float32, the clip's motion (blendshapes minus its
    neutral), and ``mask`` (window_frames,) float32, 0 on padding past a short clip's end and on
    frames without a face.
    """

    def __init__(
        self,
        files: Sequence[Path],
        window_frames: int,
        features: str,
        shuffle_buffer: int = 256,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__(files, seed, rank, world_size, features)
        self.window_frames = window_frames
        self.shuffle_buffer = shuffle_buffer
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Where the next iteration starts: the unit order and the windows depend on the epoch."""
        self.epoch = epoch

    def _order_seed(self, epoch: int) -> int:
        return self.seed * 1_000_003 + epoch

    def _window(self, clip: Clip, start: int) -> dict[str, torch.Tensor]:
        if clip.features is None:
            raise ShardError(f"clip {clip.clip_id} has no cached {self.features} features")
        n, w = len(clip.blendshapes), self.window_frames
        end = min(start + w, n)
        features = np.zeros((w, clip.features.shape[1]), np.float32)
        features[: end - start] = clip.features[start:end]
        motion = clip.motion
        target = np.zeros((w, motion.shape[1]), np.float32)
        mask = np.zeros(w, np.float32)
        target[: end - start] = motion[start:end]
        target[end - start :] = motion[end - 1]
        mask[: end - start] = clip.face_present[start:end]
        return {
            "features": torch.from_numpy(features),
            "neutral": torch.from_numpy(clip.neutral),
            "target": torch.from_numpy(target),
            "mask": torch.from_numpy(mask),
        }

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Windows of epoch after epoch, from :attr:`epoch` on, without end (nothing for a reader
        that holds no unit)."""
        info = get_worker_info()
        worker = info.id if info else 0
        epoch = self.epoch
        buffer: list[dict[str, torch.Tensor]] = []
        while True:
            rng = np.random.default_rng([self.seed, epoch, self.rank, worker])
            clips = 0
            for clip in self._clips(self._order_seed(epoch)):
                clips += 1
                n = len(clip.blendshapes)
                for _ in range(max(1, n // self.window_frames)):
                    start = int(rng.integers(0, max(n - self.window_frames, 0) + 1))
                    buffer.append(self._window(clip, start))
                    if len(buffer) >= self.shuffle_buffer:
                        i = int(rng.integers(len(buffer)))
                        buffer[i], buffer[-1] = buffer[-1], buffer[i]
                        yield buffer.pop()
            if not clips:
                return
            epoch += 1
