"""Small real shard folders for the generator's unit tests, written with the export's schema."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from manifests.schema import SHARD_BLENDSHAPE_NAMES, shard_schema
from manifests.store import records_to_table

FPS = 30.0
SR = 16_000


def frame_of_sample(samples: np.ndarray) -> np.ndarray:
    """Frame each sample belongs to: frame k starts at sample round(k * SR / FPS)."""
    starts = np.round(np.arange(int(samples.max() * FPS / SR) + 3) * SR / FPS)
    return np.searchsorted(starts, samples, side="right") - 1


def coded_clip(clip_id: str, group_id: str, n_frames: int, split: str = "train") -> dict:
    """A shard row whose values say where they are: every audio sample holds its frame's index
    (PCM units) and channel 0 holds the frame index; frame 1 has no face."""
    n_samples = round(n_frames / FPS * SR)
    frames = np.zeros((n_frames, len(SHARD_BLENDSHAPE_NAMES)), np.float32)
    frames[:, 0] = np.arange(n_frames)
    present = np.ones(n_frames, bool)
    present[1] = False
    return {
        "clip_id": clip_id, "video_id": group_id, "group_id": group_id, "split": split,
        "source_uri": f"/videos/{clip_id}.mp4", "start_s": 0.0, "fps": FPS, "n_frames": n_frames,
        "sample_rate_hz": SR, "sync_offset_frames": 0, "audio_offset_s": 0.0,
        "audio_pcm16": frame_of_sample(np.arange(n_samples)).astype(np.int16), "blendshapes": list(frames), "face_present": present,
        "neutral": np.median(frames[present], axis=0), "decision_set": "set", "config_hash": "hash",
    }  # fmt: skip


@pytest.fixture
def write_export(tmp_path: Path) -> Callable[..., Path]:
    """``write_export(rows, clips_per_row_group=1)``: an export folder (shards + manifest) holding ``rows``."""

    def write(rows: Sequence[dict], clips_per_row_group: int = 1) -> Path:
        folder = tmp_path / "export"
        folder.mkdir()
        splits: dict[str, dict] = {s: {"clips": 0, "files": []} for s in ("train", "val", "test")}
        for split in splits:
            mine = [r for r in rows if r["split"] == split]
            if mine:
                name = f"{split}-00000.parquet"
                table = records_to_table(mine, shard_schema())
                pq.write_table(table, folder / name, row_group_size=clips_per_row_group)
                splits[split] = {"clips": len(mine), "files": [{"file": name, "clips": len(mine)}]}
        manifest = {
            "fps": FPS,
            "sample_rate_hz": SR,
            "blendshape_names": list(SHARD_BLENDSHAPE_NAMES),
            "splits": splits,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return folder

    return write
