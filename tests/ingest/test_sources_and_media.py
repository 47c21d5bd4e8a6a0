"""Naming inputs (folders, globs, list files, URIs) and decoding them."""

from __future__ import annotations

import os

import fsspec
import numpy as np
import pytest

from bench.media import damaged_copy
from ingest.media import SPEECH_SR_HZ, iter_frames_at_rate, read_audio
from ingest.sources import expand_sources, localize


def test_folder_glob_and_list_files(fixtures, tmp_path) -> None:
    folder = fixtures / "video"
    from_dir = expand_sources([str(folder)])
    assert len(from_dir) == 11 and all(os.path.isabs(p) for p in from_dir)
    assert expand_sources([str(folder / "vr_face_*.mp4")]) == sorted(
        str(folder / f"vr_face_{i}.mp4") for i in (1, 3, 5)
    )
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# two clips\n{folder / 'vr_face_3.mp4'}\n\n{folder / 'iplap_129.mp4'}\n")
    assert expand_sources([str(listing)]) == [str(folder / "vr_face_3.mp4"), str(folder / "iplap_129.mp4")]
    table = tmp_path / "inputs.csv"
    table.write_text(f"speaker,uri\na,{folder / 'r3p_May_5s.mp4'}\nb,memory://bucket/x.mp4\n")
    tags: dict[str, dict[str, str]] = {}
    assert expand_sources([str(table)], tags) == [str(folder / "r3p_May_5s.mp4"), "memory://bucket/x.mp4"]
    assert tags == {
        str(folder / "r3p_May_5s.mp4"): {"speaker": "a"},
        "memory://bucket/x.mp4": {"speaker": "b"},
    }


def test_csv_without_uri_column_is_a_clear_error(tmp_path) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("path\nx.mp4\n")
    with pytest.raises(ValueError, match="uri"):
        expand_sources([str(table)])


def test_unmatched_name_is_kept_to_be_recorded(tmp_path) -> None:
    assert expand_sources([str(tmp_path / "nope.mp4")]) == [str(tmp_path / "nope.mp4")]


def test_object_store_uri_is_copied_locally(video, tmp_path) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/clip.mp4", video("vr_face_3.mp4").read_bytes())
    local = localize("memory://bucket/clip.mp4", tmp_path)
    assert local.read_bytes() == video("vr_face_3.mp4").read_bytes()
    with pytest.raises(FileNotFoundError):
        localize("memory://bucket/absent.mp4", tmp_path)


def test_frames_on_a_constant_grid_from_a_variable_rate_source(video) -> None:
    frames = list(iter_frames_at_rate(video("vr_face_1.mp4"), 1.0, 3.0, 30.0))
    t = np.array([f.t_s for f in frames])
    assert len(frames) == 60
    assert np.allclose(np.diff(t), 1 / 30)
    src = np.array([f.src_pts_s for f in frames])
    assert np.all(src <= t + 1e-6) and np.all(np.diff(src) >= 0)
    assert any(f.repeated for f in frames)  # ~22 source frames a second fill 30 slots
    image = frames[0].image
    assert image.shape == (700, 700, 3) and image.flags["C_CONTIGUOUS"]


def test_audio_span_at_16k(video) -> None:
    audio = read_audio(video("vr_face_3.mp4"), 1.0, 3.5)
    assert audio.dtype == np.float32
    assert len(audio) == pytest.approx(2.5 * SPEECH_SR_HZ, abs=2)
    assert 0 < np.abs(audio).max() <= 1.0


def test_damaged_audio_packets_are_skipped_and_later_audio_keeps_its_time(tmp_path, video) -> None:
    src = video("vr_face_1.mp4")
    damaged = damaged_copy(src, tmp_path / "damaged.mp4", "audio", 2.0, 3.0)
    clean, hurt = read_audio(src), read_audio(damaged)
    assert abs(len(hurt) - len(clean)) <= 1024  # the damaged second is there, as silence or noise
    # A second after the damage lines up with the original within 2 ms (the resampler's delay).
    seg = clean[4 * 16_000 : 5 * 16_000]
    lags = range(-160, 161)
    corr = [np.corrcoef(seg, hurt[4 * 16_000 + k : 5 * 16_000 + k])[0, 1] for k in lags]
    best = int(np.argmax(corr))
    assert abs(lags[best]) <= 32 and corr[best] > 0.99
