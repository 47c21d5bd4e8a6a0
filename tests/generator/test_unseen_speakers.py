"""The generator on speakers it never saw: trained on eleven of the pool's training speakers (45 s,
docs/pool/train.csv), judged on the six speaking fixtures (other people, 39 s).

So little data does not reach the pool-wide figures of docs/generator.md; what it must show is
that it learns speech, not speakers: lip timing that follows the audio (lag within a frame or
two, a correlation well above that of another clip's real motion), no worse than a held clip
median where the audio says nothing, and upper-face motion where a held pose has none.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from curate.filter import apply_filters
from extractors.registry import make_config

#: The only rules on the columns the pool subset's run measured (face and fingerprint).
FACE_RULES = ("face_missing", "multiple_faces")


@pytest.fixture(scope="module")
def figures(pool_train_subset: Path, accepted_run, curate, tmp_path_factory) -> dict:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("unseen")
    root = work / "pool"
    shutil.copytree(pool_train_subset, root, ignore=shutil.ignore_patterns(".lock", "_staging", "exports"))
    off = {name: {"enabled": False} for name in make_config().filter.rules if name not in FACE_RULES}
    apply_filters(root, make_config(filter={"rules": off, "duplicates": "off"}))
    speakers = ("--group", "v.source_tags['speaker_id']")
    done = curate("export", str(root), "--name", "pool", *speakers, "--val", "0.25", "--test", "0")
    assert done.returncode == 0, done.stderr
    unseen = f"unseen-{uuid.uuid4().hex[:8]}"
    done = curate("export", str(accepted_run.root), "--name", unseen, "--val", "0", "--test", "0")
    assert done.returncode == 0, done.stderr
    run = work / "run"
    done = curate(
        "train", str(root / "exports" / "pool"), "--out", str(run), "--device", "cpu", "--steps", "300"
    )
    assert done.returncode == 0, done.stderr
    out = work / "eval.json"
    export = accepted_run.root / "exports" / unseen
    done = curate("eval", str(run), "--export", str(export), "--split", "train", "--json", str(out))
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_lips_follow_the_speech_of_unseen_speakers(figures: dict) -> None:
    rows = figures["rows"]
    assert figures["clips"] == 6
    model = rows["model + clip neutral"]
    assert abs(model["lag_frames"]) <= 2
    assert model["lag_corr"] >= 0.35 and model["lag_corr"] > rows["other clip"]["lag_corr"] + 0.2


def test_no_worse_than_the_clip_median_and_moving_where_held_poses_do_not(figures: dict) -> None:
    rows = figures["rows"]
    model, median = rows["model + clip neutral"], rows["clip median pose"]
    assert model["LVE_BS"] <= 1.05 * median["LVE_BS"]
    assert model["LVE_BS"] < rows["other clip"]["LVE_BS"]
    assert rows["model + default neutral"]["LVE_BS"] <= 1.05 * rows["default neutral"]["LVE_BS"]
    assert abs(model["FDD_BS"]) < abs(rows["default neutral"]["FDD_BS"])
