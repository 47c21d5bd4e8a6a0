"""ARKit calibration: the quantile map (its knots land where they should, monotone, still channels
left alone, a file that round-trips) and `curate calibrate` on the fixture run against the real
Live Link Face capture, used by `curate export --calibration` and drawn by the report."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest

from manifests.arkit_map import QUANTILES, Calibration, CalibrationError, read_capture
from manifests.schema import SHARD_BLENDSHAPE_NAMES


def test_the_map_takes_corpus_quantiles_to_capture_quantiles_monotonically(tmp_path) -> None:
    rng = np.random.default_rng(0)
    corpus = np.stack([rng.beta(1, 8, 5000), np.zeros(5000), rng.uniform(0, 0.3, 5000)], axis=1)
    capture = np.stack([rng.uniform(0, 1, 900), rng.uniform(0, 1, 900)], axis=1)
    cal = Calibration.fit(
        corpus, ["jawOpen", "cheekPuff", "tongueOut"], capture, ["JawOpen", "CheekPuff"], "take"
    )
    mapped = cal.apply(corpus, ["jawOpen", "cheekPuff", "tongueOut"])
    capture_q = np.quantile(capture[:, 0], QUANTILES)
    np.testing.assert_allclose(np.quantile(mapped[:, 0], QUANTILES), capture_q, atol=0.02)
    grid = np.linspace(0, 1, 101)[:, None]
    assert (np.diff(cal.apply(grid, ["jawOpen"])[:, 0]) >= 0).all(), "monotone"
    np.testing.assert_array_equal(mapped[:, 1], 0), "a still channel keeps the identity"
    np.testing.assert_allclose(mapped[:, 2], corpus[:, 2], atol=1e-6), "so does one the capture lacks"
    again = Calibration.load(cal.save(tmp_path / "c.json"))
    np.testing.assert_array_equal(again.apply(corpus[:, :1], ["jawOpen"]), mapped[:, :1])
    with pytest.raises(CalibrationError, match="no channels"):
        cal.apply(corpus[:, :1], ["mouthSmileLeft"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "bad.json")


def test_calibrate_a_root_against_the_live_link_capture_export_and_report(
    accepted_run, fixtures, curate, tmp_path
) -> None:
    capture = fixtures / "capture" / "llf_alex_rom_3.csv"
    values, names = read_capture(capture)
    assert values.shape == (4030, 62) and names[0] == "BlendShapeCount", "the timecode is left out"
    path = tmp_path / "calibration.json"
    done = curate("calibrate", str(accepted_run.root), "--capture", str(capture), "--out", str(path))
    assert done.returncode == 0, done.stderr
    cal = Calibration.load(path)
    assert cal.names == list(SHARD_BLENDSHAPE_NAMES) and cal.capture == capture.name
    jaw = cal.names.index("jawOpen")
    their_p99 = np.quantile(values[:, names.index("JawOpen")], 0.99)
    assert cal.target[jaw][QUANTILES.index(0.99)] == pytest.approx(their_p99)
    assert cal.source[jaw][QUANTILES.index(0.99)] < 0.7 * their_p99, "MediaPipe opens the jaw less"

    name = f"cal-{uuid.uuid4().hex[:8]}"
    done = curate(
        "export", str(accepted_run.root), "--name", name, "--val", "0", "--test", "0",
        "--calibration", str(path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    export = accepted_run.root / "exports" / name
    assert json.loads((export / "manifest.json").read_text())["options"]["calibration"] == str(path)
    shard = pq.read_table(next(export.glob("train-*.parquet")), columns=["blendshapes"])
    frames = np.concatenate([np.asarray(c, np.float32) for c in shard.column(0).to_pylist()])
    assert np.quantile(frames[:, jaw], 0.99) > 1.3 * cal.source[jaw][QUANTILES.index(0.99)]

    report = tmp_path / "report.html"
    (accepted_run.root / "calibration.json").write_text(path.read_text())
    try:
        done = curate("report", str(accepted_run.root), "--out", str(report))
    finally:
        (accepted_run.root / "calibration.json").unlink()
    assert done.returncode == 0, done.stderr
    page = report.read_text()
    assert "Calibration to ARKit ranges" in page and f"against {capture.name}" in page
