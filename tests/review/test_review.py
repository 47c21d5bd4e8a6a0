"""Review against a real Label Studio server: push, annotate through the API as an annotator
would, pull, calibrate; pushing twice and a killed push; a wrong token and a server that is down."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests
from review_calls import annotate, cli, tasks_of

from curate.query import query
from manifests.store import DatasetRoot
from review.filter_agreement import calibrate
from review.project import find_project


def review_names(root) -> dict[str, str]:  # type: ignore[no-untyped-def]
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') name, c.clip_id from current_decisions d join clips c using (clip_id)"
        " join videos v on v.video_id = c.video_id where d.verdict = 'review'",
    ).to_pylist()
    return {r["clip_id"]: r["name"] for r in rows}


def test_push_twice_annotate_pull_and_calibrate(
    label_studio, review_root, curate_argv, speaking_videos
) -> None:
    root, config, config_file = review_root
    in_review = review_names(root)
    assert set(in_review.values()) == speaking_videos

    first = cli(curate_argv, label_studio, "push", str(root), "--config", str(config_file), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "6 task(s) pushed, 0 already there" in first.stdout
    again = cli(curate_argv, label_studio, "push", str(root), "--config", str(config_file), "--no-progress")
    assert "0 task(s) pushed, 6 already there" in again.stdout
    tasks = tasks_of(label_studio, config)
    assert sorted(t["data"]["clip_id"] for t in tasks) == sorted(in_review)  # no duplicates
    by_id = sorted(tasks, key=lambda t: t["id"])
    assert [t["data"]["borderline"] for t in by_id] == sorted(
        (t["data"]["borderline"] for t in tasks), reverse=True
    )
    task = by_id[0]
    assert task["predictions"][0]["result"][0]["value"]["choices"] == ["accept"]
    # the prediction's score is the filter's certainty: uncertainty sampling serves the lowest first
    assert [t["predictions"][0]["score"] for t in by_id] == [
        round(1 - t["data"]["borderline"], 3) for t in by_id
    ]
    project = find_project(label_studio.client(), config.review.project)
    assert project["sampling"] == "Uncertainty sampling" and project["maximum_annotations"] == 1
    auth = {"Authorization": f"Token {label_studio.credentials.token}"}
    media = requests.get(label_studio.url + task["data"]["video"], headers=auth)
    assert media.status_code == 200 and media.content[4:8] == b"ftyp"  # the clip's mp4 from local storage
    curves = requests.get(label_studio.url + task["data"]["curves"], headers=auth).text.splitlines()
    assert curves[0] == "time_s,jawOpen,mouthClose,mouthFunnel,mouthSmile,browInnerUp,eyeBlink"
    assert abs(len(curves) - 1 - task["data"]["duration_s"] * 30) <= 1  # one row per frame at 30 fps
    assert 0 < float(curves[-1].split(",")[0]) < task["data"]["duration_s"]

    # Two reviewers' worth of verdicts; one is later corrected.
    name_of = {t["id"]: in_review[t["data"]["clip_id"]] for t in tasks}
    task_of = {name_of[t["id"]]: t for t in tasks}
    annotate(label_studio, task_of["lp_driving_d20.mp4"], "reject", ["language"], "neutral")
    annotate(label_studio, task_of["vr_face_3.mp4"], "accept", emotion="happy", offset=1)
    wrong = annotate(label_studio, task_of["geneface_zozo_radnerf.mp4"], "accept")
    pulled = cli(curate_argv, label_studio, "pull", str(root), "--config", str(config_file))
    assert pulled.returncode == 0, pulled.stderr
    assert "3 annotation(s) pulled" in pulled.stdout
    time.sleep(1.1)  # a later update time
    label_studio.client().sdk.annotations.update(
        id=wrong["id"],
        result=[{"from_name": "verdict", "to_name": "video", "type": "choices", "value": {"choices": ["reject"]}},
                {"from_name": "reasons", "to_name": "video", "type": "choices", "value": {"choices": ["synthetic"]}}],
    )  # fmt: skip
    repull = cli(curate_argv, label_studio, "pull", str(root), "--config", str(config_file))
    assert (
        "1 annotation(s) pulled" in repull.stdout and "2 already in the log" in repull.stdout
    )  # the edit is new
    idle = cli(curate_argv, label_studio, "pull", str(root), "--config", str(config_file))
    assert "0 annotation(s) pulled" in idle.stdout and "3 already" in idle.stdout  # idempotent

    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') name, d.verdict, d.reasons, d.who, d.emotion, d.sync_offset_frames, d.source"
        " from current_decisions d join clips c using (clip_id) join videos v on v.video_id = c.video_id"
        " where d.source = 'review' order by name",
    ).to_pylist()
    assert [(r["name"], r["verdict"], r["reasons"]) for r in rows] == [
        ("geneface_zozo_radnerf.mp4", "reject", ["synthetic"]),  # the correction supersedes
        ("lp_driving_d20.mp4", "reject", ["language"]),
        ("vr_face_3.mp4", "accept", []),
    ]
    assert {r["who"] for r in rows} == {"dawid-skene"}  # one verdict per clip, from its annotations
    assert rows[2]["emotion"] == "happy" and rows[2]["sync_offset_frames"] == 1
    history = query(
        root, "select who, count(*) n from decisions where source = 'annotation' group by who"
    ).to_pylist()
    assert history == [{"who": "admin@example.com", "n": 4}]  # the superseded annotation stays in the log

    # A later filter run does not override the reviewers.
    cli_filter = subprocess.run(
        curate_argv("filter", str(root), "--config", str(config_file)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli_filter.returncode == 0
    assert query(root, "select count(*) n from current_decisions where source = 'review'").to_pylist() == [
        {"n": 3}
    ]

    result = calibrate(root, config)
    assert result.reviewed == 3
    assert result.by_reason["little_speech"].n == 3
    assert result.overall.recall == 1.0  # both rejected clips were flagged (review band)
    assert result.overall.precision == pytest.approx(2 / 3)  # vr_face_3 was flagged and accepted
    text = calibrate(root, config).to_text()
    assert "precision" in text and "kappa" in text and "not applied" in text


def test_a_killed_push_resumes_without_duplicates(label_studio, review_root, curate_argv) -> None:
    root, config, config_file = review_root
    env = {**os.environ, **label_studio.env()}
    proc = subprocess.Popen(
        curate_argv("review", "push", str(root), "--config", str(config_file), "--no-progress"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not tasks_of(label_studio, config):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(tasks_of(label_studio, config))
    assert 0 < partial < 6  # killed after its first batch of 2
    rerun = cli(curate_argv, label_studio, "push", str(root), "--config", str(config_file), "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{6 - partial} task(s) pushed, {partial} already there" in rerun.stdout
    clip_ids = [t["data"]["clip_id"] for t in tasks_of(label_studio, config)]
    assert len(clip_ids) == len(set(clip_ids)) == 6
    assert not list((root / "review_media").glob(".*tmp*"))  # no half-written media left visible


def test_wrong_token_and_server_down_are_clear_and_lose_nothing(
    label_studio, review_root, curate_argv
) -> None:
    root, _, config_file = review_root
    before = query(root, "select count(*) n from decisions").to_pylist()
    bad_token = "not-the-token-" + "x" * 20
    refused = cli(
        curate_argv,
        label_studio,
        "push",
        str(root),
        "--config",
        str(config_file),
        env={"LABEL_STUDIO_API_TOKEN": bad_token},
    )
    assert refused.returncode == 1
    assert "refused the API token" in refused.stderr and bad_token not in refused.stderr + refused.stdout
    down = cli(
        curate_argv,
        label_studio,
        "pull",
        str(root),
        "--config",
        str(config_file),
        env={"LABEL_STUDIO_URL": "http://127.0.0.1:9"},
    )
    assert down.returncode == 1 and "cannot reach Label Studio at http://127.0.0.1:9" in down.stderr
    no_token = cli(curate_argv, label_studio, "pull", str(root), env={"LABEL_STUDIO_API_TOKEN": ""})
    assert no_token.returncode == 1 and "LABEL_STUDIO_API_TOKEN" in no_token.stderr
    assert (
        query(root, "select count(*) n from decisions").to_pylist() == before
    )  # nothing written, nothing lost
    # Then the same commands with the right settings complete.
    assert cli(curate_argv, label_studio, "push", str(root), "--config", str(config_file)).returncode == 0
    assert cli(curate_argv, label_studio, "pull", str(root), "--config", str(config_file)).returncode == 0


def test_the_token_is_in_no_file_of_the_root_or_log(label_studio, review_root, curate_argv) -> None:
    root, _, config_file = review_root
    done = cli(curate_argv, label_studio, "push", str(root), "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    token = label_studio.credentials.token.encode()
    for path in root.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), path
    assert token not in label_studio.log.read_bytes()
    assert label_studio.credentials.token not in repr(label_studio.client())


def test_a_too_short_project_title_is_a_config_error(tmp_path, curate_argv) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[review]\nproject = "ab"\n')
    DatasetRoot(tmp_path).commit({})  # an empty root: the config is what is wrong
    done = subprocess.run(
        curate_argv("review", "push", str(tmp_path), "--config", str(config)), capture_output=True, text=True
    )
    assert done.returncode == 2 and "review.project" in done.stderr
