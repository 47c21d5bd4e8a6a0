"""From fixture video to a trained generator, through the command line as a user runs it:
`curate run` (the session's fixture run) -> `curate export` -> `curate train` (and a resume) ->
`curate eval` -> `curate predict`.

Fixture facts used: six accepted clips, about 39 s of speech; vr_face_3.mp4 speaks for 5.0 s;
iplap_129.mp4 has no audio stream. The data are tiny, so the model is trained briefly and judged
on its training clips: it must beat the training mean pose there.
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import uuid
from pathlib import Path

import pytest

from generator.evaluate import COLUMNS
from ingest.media import frame_grid, read_audio

STEPS, MORE = 100, 5
BASELINES = (
    "ground truth",
    "model + clip neutral",
    "model + default neutral",
    "default neutral",
    "clip median pose",
    "truth +1 frames",
    "truth +2 frames",
    "truth +4 frames",
    "other clip",
)


@pytest.fixture(scope="module")
def trained(curate, accepted_run, tmp_path_factory) -> dict:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    done = curate("export", str(accepted_run.root), "--name", name, "--val", "0", "--test", "0")
    assert done.returncode == 0, done.stderr
    export = accepted_run.root / "exports" / name
    run = tmp_path_factory.mktemp("generator") / "run"
    common = ("train", str(export), "--out", str(run), "--device", "cpu", "--checkpoint-every", "50")
    first = curate(*common, "--steps", str(STEPS))
    assert first.returncode == 0, first.stderr
    resumed = curate(*common, "--steps", str(STEPS + MORE), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    again = curate(*common, "--steps", str(STEPS + MORE))
    assert again.returncode == 0, again.stderr
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {
        "export": export, "run": run, "first": first.stdout, "first_err": first.stderr,
        "resumed": resumed.stdout, "resumed_err": resumed.stderr, "again": again.stdout, "log": log,
    }  # fmt: skip


def test_training_shows_its_progress_and_says_when_there_is_nothing_to_do(trained) -> None:
    assert "curate train: 100%" in trained["first_err"] and "windows_s=" in trained["first_err"]
    assert "curate train" not in trained["resumed_err"], "--no-progress: no bar"
    assert "nothing to do" in trained["again"] and "windows/s" not in trained["again"]


def test_training_loss_falls(trained) -> None:
    losses = [line["loss"] for line in trained["log"] if "loss" in line]
    first, last = sum(losses[:10]) / 10, sum(losses[STEPS - 10 : STEPS]) / 10
    assert last < 0.5 * first, (first, last)
    assert f"step {STEPS}," in trained["first"]


def test_a_rerun_resumes_from_the_checkpoint(trained) -> None:
    steps = [line["step"] for line in trained["log"] if "loss" in line]
    assert steps == list(range(1, STEPS + MORE + 1)), (
        "every step once, the resumed ones after the first run's"
    )
    assert f"step {STEPS + MORE}," in trained["resumed"]
    assert (trained["run"] / "checkpoint.pt").is_file()
    assert not list(trained["run"].glob(".*.tmp"))


def test_eval_table_has_every_metric_and_baseline_and_the_model_beats_the_held_poses(
    trained, curate, tmp_path
) -> None:
    out = tmp_path / "eval.json"
    done = curate("eval", str(trained["run"]), "--split", "train", "--json", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("split train: 6 clips")
    assert lines[1].split() == ["predictor", *COLUMNS]
    assert [line[: len(name)] for line, name in zip(lines[2:], BASELINES, strict=True)] == list(BASELINES)
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == set(BASELINES)
    assert all(set(row) == set(COLUMNS) for row in rows.values())
    for level in ("clip", "default"):
        model, held = (
            rows[f"model + {level} neutral"],
            rows["clip median pose" if level == "clip" else "default neutral"],
        )
        assert model["LVE_BS"] < held["LVE_BS"] and model["MVE_BS"] < held["MVE_BS"], level
    assert rows["truth +2 frames"]["lag_frames"] == 2
    assert rows["default neutral"]["diversity"] == pytest.approx(0, abs=1e-6)


def test_predict_writes_a_live_link_face_csv_a_row_per_frame(
    trained, curate, video, fixtures, tmp_path
) -> None:
    speech = video("vr_face_3.mp4")
    out = tmp_path / "anim.csv"
    done = curate("predict", str(trained["run"]), str(speech), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with open(fixtures / "capture" / "llf_alex_rom_3.csv", newline="") as fh:
        header = next(csv.reader(fh))
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == header
    n_frames = len(frame_grid(0.0, len(read_audio(speech)) / 16_000, 30.0))
    assert len(rows) - 1 == n_frames == 151
    jaw = [float(r[header.index("JawOpen")]) for r in rows[1:]]
    assert all(0 <= v <= 1 for v in jaw) and max(jaw) - min(jaw) > 0.05, "the jaw moves with the speech"
    npy = curate("predict", str(trained["run"]), str(speech), "--out", str(tmp_path / "anim.npy"))
    assert npy.returncode == 0 and f"{n_frames} frames" in npy.stdout


def test_clear_errors(trained, curate, video, tmp_path) -> None:
    empty = curate("eval", str(trained["run"]), "--split", "test")
    assert empty.returncode == 1 and "split 'test'" in empty.stderr and "has no clips" in empty.stderr
    silent = curate(
        "predict", str(trained["run"]), str(video("iplap_129.mp4")), "--out", str(tmp_path / "x.csv")
    )
    assert silent.returncode == 1 and "no audio stream" in silent.stderr
    untrained = curate("eval", str(tmp_path))
    assert untrained.returncode == 1 and "no checkpoint.pt" in untrained.stderr
    other = curate(
        "train", str(trained["export"]), "--out", str(trained["run"]), "--hidden", "32", "--steps", "200"
    )
    assert other.returncode == 1 and "another shape" in other.stderr


def readme_generator_lines() -> list[str]:
    """The `curate ...` lines of the README's "Training a generator" block, comments cut."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("### Training a generator", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("curate ")]


def test_the_readmes_user_path_runs_on_the_sample_media_as_written(
    curate, fixture_run, video, tmp_path
) -> None:
    """After `curate run` (the session's fixture run): filter, report, query, then the README's
    generator lines as written, each step's output checked."""
    root = tmp_path / "root"
    shutil.copytree(
        fixture_run.root, root, ignore=shutil.ignore_patterns(".lock", "_staging", "exports", "review_media")
    )
    judged = curate("filter", str(root))
    assert judged.returncode == 0 and "decision set" in judged.stdout and "accept" in judged.stdout
    report = curate("report", str(root))
    assert report.returncode == 0 and (root / "report.html").is_file()
    counted = curate(
        "query",
        str(root),
        "select verdict, count(*) n from current_decisions group by verdict order by verdict",
    )
    assert counted.returncode == 0 and "accept" in counted.stdout and "reject" in counted.stdout
    lines = readme_generator_lines()
    assert [line.split()[1] for line in lines] == ["export", "train", "eval", "predict"]
    outputs = {}
    for line in lines:
        args = [
            str(root) if a == "ROOT" else str(root / a[5:]) if a.startswith("ROOT/") else a
            for a in shlex.split(line)[1:]
        ]
        args = [str(tmp_path / a) if a.startswith("runs/") or a == "speech.csv" else a for a in args]
        args = [str(video("vr_face_3.mp4")) if a == "speech.wav" else a for a in args]
        done = curate(*args)
        assert done.returncode == 0, (line, done.stderr)
        assert "warning" not in done.stdout + done.stderr, (line, done.stdout, done.stderr)
        outputs[args[0]] = done
    assert "test " in outputs["export"].stdout
    assert "curate train: 100%" in outputs["train"].stderr and "step 600," in outputs["train"].stdout
    assert (
        outputs["eval"].stdout.startswith("split test:") and "model + clip neutral" in outputs["eval"].stdout
    )
    assert "151 frames at 30 fps" in outputs["predict"].stdout and (tmp_path / "speech.csv").is_file()
