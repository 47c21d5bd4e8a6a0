"""Animation files: the Live Link Face CSV matches a real iPhone capture's layout, value for value."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from generator.livelink import LLF_BLENDSHAPES, timecode, write_animation
from manifests.schema import SHARD_BLENDSHAPE_NAMES


@pytest.fixture(scope="module")
def capture(fixtures: Path) -> list[list[str]]:
    """The fixture capture llf_alex_rom_3.csv: header and 4030 rows at 30 fps."""
    with open(fixtures / "capture" / "llf_alex_rom_3.csv", newline="") as fh:
        return list(csv.reader(fh))


def arkit(llf_name: str) -> str:
    return llf_name[0].lower() + llf_name[1:]


def test_a_real_capture_written_back_is_the_same_text(capture, tmp_path) -> None:
    header, rows = capture[0], capture[1:101]
    columns = [header.index(n) for n in LLF_BLENDSHAPES]
    values = np.array([[float(r[c]) for c in columns] for r in rows])
    names = [arkit(n) for n in LLF_BLENDSHAPES]
    out = write_animation(tmp_path / "anim.csv", values, names, 30.0, "csv")
    with open(out, newline="") as fh:
        written = list(csv.reader(fh))
    assert written[0] == header
    assert len(written) == 101
    for mine, theirs in zip(written[1:], rows, strict=True):
        assert [mine[c] for c in columns] == [theirs[c] for c in columns]
        assert mine[1] == theirs[1] == "61"


def test_model_channels_map_by_name_and_missing_ones_are_zero(capture, tmp_path) -> None:
    header = capture[0]
    values = np.tile(np.linspace(0.01, 0.51, len(SHARD_BLENDSHAPE_NAMES)), (5, 1))
    path = write_animation(tmp_path / "a.csv", values, SHARD_BLENDSHAPE_NAMES, 30.0, "csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and list(rows[0]) == header
    jaw = SHARD_BLENDSHAPE_NAMES.index("jawOpen")
    assert float(rows[3]["JawOpen"]) == pytest.approx(values[3, jaw])
    assert float(rows[0]["EyeBlinkLeft"]) == pytest.approx(
        values[0, SHARD_BLENDSHAPE_NAMES.index("eyeBlinkLeft")]
    )
    assert float(rows[0]["TongueOut"]) == 0 and float(rows[0]["HeadYaw"]) == 0
    assert [r["Timecode"] for r in rows[:3]] == ["00:00:00:00.000", "00:00:00:02.000", "00:00:00:04.000"]


def test_timecodes_step_like_the_capture(capture) -> None:
    """The capture's rows are 2 timecode frames apart at 30 fps (frames counted at 60)."""

    def frames(code: str) -> float:
        h, m, s, f = code.split(":")
        return ((int(h) * 60 + int(m)) * 60 + int(s)) * 60 + float(f)

    steps = np.diff([frames(r[0]) for r in capture[1:200]])
    assert np.median(steps) == pytest.approx(2.0, abs=0.01)
    assert [frames(timecode(k / 30)) for k in range(3)] == [0.0, 2.0, 4.0]
    assert timecode(3661.5) == "01:01:01:30.000"
    assert timecode(59.99999) == "00:00:59:59.999"


def test_json_and_npy(tmp_path) -> None:
    values = np.random.default_rng(0).random((7, len(SHARD_BLENDSHAPE_NAMES)))
    doc = json.loads(
        write_animation(tmp_path / "a.json", values, SHARD_BLENDSHAPE_NAMES, 30.0, "json").read_text()
    )
    assert doc["fps"] == 30 and doc["names"] == list(LLF_BLENDSHAPES) and len(doc["frames"]) == 7
    array = np.load(write_animation(tmp_path / "a.npy", values, SHARD_BLENDSHAPE_NAMES, 30.0, "npy"))
    assert array.shape == (7, 52) and array.dtype == np.float32
    assert array[:, LLF_BLENDSHAPES.index("JawOpen")] == pytest.approx(
        values[:, SHARD_BLENDSHAPE_NAMES.index("jawOpen")], abs=1e-6
    )
    assert doc["frames"][2][LLF_BLENDSHAPES.index("JawOpen")] == pytest.approx(array[2, 17], abs=1e-6)


def test_unknown_channels_and_formats_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="without a Live Link Face column"):
        write_animation(tmp_path / "a.csv", np.zeros((2, 1)), ["_neutral"], 30.0, "csv")
    with pytest.raises(ValueError, match="unknown animation format"):
        write_animation(tmp_path / "a.fbx", np.zeros((2, 1)), ["jawOpen"], 30.0, "fbx")
    assert not list(tmp_path.iterdir())
