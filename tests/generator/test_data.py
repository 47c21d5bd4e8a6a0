"""Streaming shards: readers split the row groups disjointly and cover them; windows keep features
and targets aligned; full sequences come back whole; features are cached once."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow.parquet as pq
import pytest
from torch.utils.data import DataLoader

from generator.data import (
    Export,
    SequenceStream,
    ShardError,
    WindowStream,
    ensure_features,
    read_unit,
    reader_units,
    units_of,
)
from generator.features import FrameFeatures, cache_path, write_cached

from .conftest import FPS, SR, coded_clip


def test_reader_units_are_disjoint_and_cover_everything() -> None:
    units = [(f"file{f}", g) for f in range(3) for g in range(7)]
    for seed in (None, 1, 2):
        for world, workers in ((1, 1), (2, 3), (4, 2), (5, 7)):
            parts = [
                reader_units(units, seed, r, world, w, workers)
                for r, w in itertools.product(range(world), range(workers))
            ]
            flat = [u for p in parts for u in p]
            assert sorted(flat) == sorted(units) and len(flat) == len(units)
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert reader_units(units, 1, 0, 2, 0, 1) != reader_units(units, 2, 0, 2, 0, 1), "epochs reorder"


def test_ranks_and_dataloader_workers_split_the_clips(write_export) -> None:
    rows = [coded_clip(f"clip{i}", f"g{i % 3}", 40 + i) for i in range(7)]
    export = write_export(rows)
    files = Export.open(export).files("train")
    assert len(units_of(files)) == 7
    seen = []
    for rank in range(2):
        stream = SequenceStream(files, rank=rank, world_size=2)
        loader = DataLoader(stream, batch_size=None, num_workers=2)  # real worker processes
        seen.append([clip.clip_id for clip in loader])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(r["clip_id"] for r in rows)


def test_sequences_come_back_whole(write_export) -> None:
    export = write_export([coded_clip("a", "g", 50), coded_clip("b", "g", 61)], clips_per_row_group=2)
    clips = list(SequenceStream(Export.open(export).files("train"), rank=0, world_size=1))
    assert [c.clip_id for c in clips] == ["a", "b"]
    b = clips[1]
    assert b.blendshapes.shape == (61, 51) and len(b.audio) == round(61 / FPS * SR)
    np.testing.assert_array_equal(b.blendshapes[:, 0], np.arange(61))
    assert not b.face_present[1] and b.face_present[[0, 2]].all()


def _frame_coded_features(export: Export) -> None:
    """A log-mel cache whose every value is its frame's index."""
    for shard in export.shard_files():
        clips = [c for g in range(pq.ParquetFile(shard).num_row_groups) for c in read_unit((shard, g))]
        write_cached(
            cache_path(export.path, "log-mel", shard),
            {
                c.clip_id: np.tile(np.arange(len(c.blendshapes), dtype=np.float32)[:, None], (1, 80))
                for c in clips
            },
        )


def test_windows_keep_features_and_targets_aligned(write_export) -> None:
    export = Export.open(write_export([coded_clip("long", "g", 200), coded_clip("short", "h", 20)]))
    _frame_coded_features(export)
    stream = WindowStream(export.files("train"), 30, "log-mel", shuffle_buffer=4, seed=3)
    windows = list(itertools.islice(stream, 40))
    assert {tuple(w["features"].shape) for w in windows} == {(30, 80)}
    for w in windows:
        frame = w["features"][:, 0].numpy()
        valid = w["mask"].numpy() > 0
        first = int(frame[0])
        short = w["mask"].sum() <= 20
        n = 20 if short else 200
        real = min(30, n - first)
        np.testing.assert_array_equal(frame[:real], np.arange(first, first + real))
        # channel 0 holds the frame index; the target is it minus the clip's neutral (its median)
        neutral = np.median(np.delete(np.arange(n), 1))
        np.testing.assert_allclose(w["target"][:real, 0].numpy(), frame[:real] - neutral)
        if short:  # padded past its end, mask 0 there
            assert valid[:20].sum() == (19 if first == 0 else 20) and not valid[20:].any()
            assert (frame[20:] == 0).all()
    starts = {int(w["features"][0, 0]) for w in windows if w["mask"].sum() > 20}
    assert len(starts) > 5, "windows start at random frames"


def test_features_are_encoded_once_and_cached_beside_the_shards(write_export) -> None:
    export = Export.open(
        write_export([coded_clip("a", "g", 50), coded_clip("b", "h", 61, "val")], clips_per_row_group=1)
    )
    made: list[FrameFeatures] = []

    def make() -> FrameFeatures:
        made.append(FrameFeatures("log-mel"))
        return made[-1]

    assert ensure_features(export, "log-mel", make) == 2
    assert sorted(p.name for p in (export.path / "features" / "log-mel").iterdir()) == [
        "train-00000.npz",
        "val-00000.npz",
    ]
    (clip,) = SequenceStream(export.files("val"), rank=0, world_size=1, features="log-mel")
    assert clip.features is not None and clip.features.shape == (61, 80)
    assert ensure_features(export, "log-mel", make) == 0 and len(made) == 1, "nothing encoded twice"


def test_a_split_without_clips_is_a_clear_error(write_export) -> None:
    export = Export.open(write_export([coded_clip("a", "g", 50)]))
    with pytest.raises(ShardError, match=r"split 'val' .* has no clips"):
        export.files("val")
    with pytest.raises(ShardError, match="not an export"):
        Export.open(export.path / "nowhere")
