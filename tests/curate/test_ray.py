"""The Ray executor for real: a local cluster, a two-node cluster on loopback, a driver killed
with SIGKILL and rerun, a worker process killed mid-run, and the lock on a dataset root.

Fixture facts used: the 11 fixture videos give 13 clips (see tests/test_run_fixtures.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from runs import (
    EXPECTED_FAILURES,
    FIXTURE_CLIPS,
    FIXTURE_VIDEOS,
    counts,
    failures,
    last_summary,
    wait_for,
)

from curate.query import query
from curate.ray_executor import PoolPlan, plan_pools
from extractors.base import Resources
from manifests.lock import RootBusy, hold
from manifests.store import DatasetRoot

FACE, SPEECH = ("face", Resources(cpus=1.0)), ("speech", Resources(cpus=1.0, gpus=0.5))


def test_pools_on_cpus_fuse_every_stage_one_worker_per_cpu() -> None:
    assert plan_pools([FACE, SPEECH], cluster_cpus=2, cluster_gpus=0) == [
        PoolPlan(("face", "speech"), 2, 1.0)
    ]
    assert plan_pools([FACE, SPEECH], 16, 0, workers=1) == [PoolPlan(("face", "speech"), 1, 1.0)]


def test_a_gpu_stage_gets_its_own_pool_on_the_gpus() -> None:
    assert plan_pools([FACE, SPEECH], cluster_cpus=16, cluster_gpus=1) == [
        PoolPlan(("face",), 14, 1.0),
        PoolPlan(("speech",), 2, 1.0, 0.5),
    ]
    cpu_only_speech = ("speech", Resources(cpus=1.0))
    assert plan_pools([FACE, cpu_only_speech], 16, 1)[0].stages == ("face", "speech")


def test_own_pool_on_one_cpu_shares_it() -> None:
    plans = plan_pools([FACE, SPEECH], cluster_cpus=1, cluster_gpus=0, own_pool=["speech"])
    assert [p.stages for p in plans] == [("face",), ("speech",)]
    assert sum(p.actors * p.cpus for p in plans) == pytest.approx(1.0)


def stage_workers(driver: int) -> list[int]:
    """The ``ray::StageWorker`` processes below ``driver`` (its local cluster's), never another
    Ray job's on the same machine."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        parent[int(stat.parent.name)] = int(fields[1])

    def below(pid: int) -> bool:
        seen = set()
        while pid in parent and pid not in seen:
            seen.add(pid)
            pid = parent[pid]
            if pid == driver:
                return True
        return False

    done = subprocess.run(["pgrep", "-f", "ray::StageWorker"], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split() if below(int(p))]


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_kill_9_of_the_driver_then_the_same_command_resumes(
    tmp_path, fixtures, fast_config, curate, curate_argv
) -> None:
    out = tmp_path / "out"
    argv = curate_argv("run", str(fixtures / "video"), "--out", str(out), "--config", str(fast_config))
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(DatasetRoot(out).committed().done_videos) >= 3, what="three finished videos")
        busy = curate(*argv[3:])  # a second run while the first is live
        assert busy.returncode == 3 and "is in use by run" in busy.stderr, busy.stderr
        workers = stage_workers(driver.pid)  # found while the driver is their ancestor
        assert workers, "no StageWorker process below the driver"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        # the local cluster dies with its driver; a worker may finish the part it was writing
        wait_for(lambda: not alive(workers), timeout_s=120, what="the killed run's workers to exit")
    finally:
        driver.kill()
    root = DatasetRoot(out)
    for part in root.parts("videos") + root.parts("clips") + root.parts("tracks"):
        pq.read_table(part)  # every visible part is whole
    before = counts(out)
    finished = len(root.committed().done_videos)
    assert 3 <= finished < FIXTURE_VIDEOS
    assert before["clips"] == before["uclips"] == before["tracks"] and before["videos"] == before["uvideos"]

    again = curate(*argv[3:])  # the same command: the killed run's lock does not block it
    assert again.returncode == 0, again.stderr
    summary = last_summary(out)
    assert summary["videos_skipped_done"] == finished
    assert summary["videos_processed"] == FIXTURE_VIDEOS - finished
    assert f"already done        {finished} (skipped)" in again.stdout
    after = counts(out)
    assert after == {
        "videos": FIXTURE_VIDEOS, "uvideos": FIXTURE_VIDEOS,
        "clips": FIXTURE_CLIPS, "uclips": FIXTURE_CLIPS, "tracks": FIXTURE_CLIPS,
    }  # fmt: skip
    assert failures(out) == EXPECTED_FAILURES
    assert not list(out.glob("*/.*.tmp"))  # temporaries of the killed run are swept
    logged = {p.name for t in ("clips", "tracks", "videos") for p in root.parts(t)}
    assert logged == {p.name for t in ("clips", "tracks", "videos") for p in (out / t).glob("part-*")}


def test_a_killed_worker_process_is_replaced_and_its_clip_retried(
    tmp_path, fixtures, fast_config, curate_argv
) -> None:
    out = tmp_path / "out"
    argv = curate_argv("run", str(fixtures / "video"), "--out", str(out), "--config", str(fast_config))
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: len(DatasetRoot(out).committed().clips) >= 2, what="two committed clips")
        victims = stage_workers(driver.pid)
        assert victims, "no StageWorker process of this run to kill"
        # [ray] pin_cores: a core each that no other curate worker holds; where another run on
        # the machine holds them all, a worker stays unpinned (tests/curate/test_cores.py)
        pinned = [c for c in (os.sched_getaffinity(pid) for pid in victims) if len(c) == 1]
        assert len(set().union(*pinned)) == len(pinned), pinned  # never two on one core
        os.kill(victims[0], signal.SIGKILL)
        stdout, _ = driver.communicate(timeout=600)
    finally:
        driver.kill()
    assert driver.returncode == 0, stdout
    after = counts(out)
    assert after["clips"] == after["uclips"] == FIXTURE_CLIPS and after["videos"] == FIXTURE_VIDEOS
    assert failures(out) == EXPECTED_FAILURES  # retried, so nothing lost
    assert after["tracks"] == FIXTURE_CLIPS
    summary = last_summary(out)  # finished clips the killed worker held were done again
    assert summary["clips_redone"] >= summary["clips_lost"]  # and video rows it held: counted above


def test_run_on_a_two_node_cluster(tmp_path, video, fast_config, curate, two_node_cluster) -> None:
    out = tmp_path / "out"
    names = ["vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4"]
    done = curate(
        "run", *[str(video(n)) for n in names], "--out", str(out), "--config", str(fast_config),
        "--ray-address", two_node_cluster.address,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 node(s)" in done.stdout
    summary = last_summary(out)
    assert summary["executor"] == "ray" and summary["videos_processed"] == 5
    assert len(summary["clips_by_node"]) == 2 and sum(summary["clips_by_node"].values()) == 5
    assert 0.5 < summary["worker_busy_share"] <= 1 and summary["shutdown_seconds"] > 0
    rows = query(out, "select speech_text, face_detect_rate from clips").to_pylist()
    assert len(rows) == 5 and all(r["face_detect_rate"] > 0.9 and r["speech_text"] for r in rows)


def test_without_an_address_a_run_starts_its_own_cluster_beside_a_foreign_one(
    tmp_path, video, fast_config, curate, two_node_cluster
) -> None:
    """`ray.init()` alone would attach to the cluster `ray start` left on this host."""
    out = tmp_path / "out"
    done = curate("run", str(video("vr_face_5.mp4")), "--out", str(out), "--config", str(fast_config))
    assert done.returncode == 0, done.stderr
    assert "1 node(s)" in done.stdout  # its own: the foreign cluster has two
    assert last_summary(out)["videos_processed"] == 1


def test_a_speech_pool_of_its_own_gives_the_same_columns(tmp_path, video, fast_config, curate) -> None:
    config = tmp_path / "own.toml"
    config.write_text(fast_config.read_text() + 'own_pool = ["speech"]\n')
    out = tmp_path / "out"
    done = curate(
        "run",
        str(video("vr_face_5.mp4")),
        str(video("lp_driving_d18.mp4")),
        "--out",
        str(out),
        "--config",
        str(config),
    )
    assert done.returncode == 0, done.stderr
    rows = query(out, "select speech_text, face_frames, errors from clips order by duration_s").to_pylist()
    assert "regulation" in rows[0]["speech_text"] and rows[0]["face_frames"] > 100 and rows[0]["errors"] == []
    assert rows[1]["face_frames"] > 100 and dict(rows[1]["errors"])["speech"].startswith("no_speech")


def test_a_live_lock_refuses_and_a_dead_holders_lock_does_not_block(
    tmp_path, video, fast_config, curate
) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time; from manifests.lock import hold; from manifests.store import DatasetRoot\n"
         f"with hold(DatasetRoot({str(out)!r}), 'holder-run'):\n    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(RootBusy, match=r"in use by run holder-run \(pid \d+"),
            hold(DatasetRoot(out), "me"),
        ):
            pass
        args = (
            "run",
            str(video("vr_face_5.mp4")),
            "--out",
            str(out),
            "--config",
            str(fast_config),
            "--executor",
            "sequential",
        )
        refused = curate(*args)
        assert refused.returncode == 3 and "holder-run" in refused.stderr
        assert not (out / "videos").exists()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert "holder-run" in (out / ".lock").read_text()  # the dead holder's note is still there
        done = curate(*args)
        assert done.returncode == 0, done.stderr
    finally:
        holder.kill()
