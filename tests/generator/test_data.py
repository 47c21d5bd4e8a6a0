"""Streaming shards: readers split the row groups disjointly and cover them; windows keep audio
and frames aligned; full sequences come back whole."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from torch.utils.data import DataLoader

from generator.data import Export, SequenceStream, ShardError, WindowStream, reader_units, units_of

from .conftest import FPS, SR, coded_clip, frame_of_sample


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


def test_windows_keep_audio_and_frames_aligned(write_export) -> None:
    export = write_export([coded_clip("long", "g", 200), coded_clip("short", "h", 20)])
    stream = WindowStream(Export.open(export).files("train"), 30, FPS, SR, shuffle_buffer=4, seed=3)
    windows = list(itertools.islice(stream, 40))
    assert {tuple(w["audio"].shape) for w in windows} == {(16000,)}
    for w in windows:
        audio_frame = np.round(w["audio"].numpy() * 32767)
        first = w["target"][0, 0].item()
        valid = w["mask"].numpy() > 0
        # sample j of the window is sample round(first * sr / fps) + j of the clip
        expected = frame_of_sample(round(first * SR / FPS) + np.arange(16000))
        real = expected < (200 if w["mask"].sum() > 20 else 20)
        np.testing.assert_array_equal(audio_frame[real], expected[real])
        if w["mask"].sum() <= 20:  # the short clip: padded past its end, mask 0 there
            assert valid[:20].sum() == (19 if first == 0 else 20) and not valid[20:].any()
            assert (audio_frame[~real] == 0).all()
    starts = {w["target"][0, 0].item() for w in windows if w["mask"].sum() > 20}
    assert len(starts) > 5, "windows start at random frames"


def test_a_split_without_clips_is_a_clear_error(write_export) -> None:
    export = Export.open(write_export([coded_clip("a", "g", 50)]))
    with pytest.raises(ShardError, match=r"split 'val' .* has no clips"):
        export.files("val")
    with pytest.raises(ShardError, match="not an export"):
        Export.open(export.path / "nowhere")
