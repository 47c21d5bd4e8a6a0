"""Jobs on a real two-node Ray cluster (`ray start` head and worker on loopback, one CPU each)
whose worker node is lost mid-job: its raylet killed with SIGKILL. A run stops with a clear
error and the same command finishes on the surviving node, with nothing lost or doubled;
filter and export spread their jobs over both nodes, say so, and finish on the survivor."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cluster import Cluster, nodes_up
from runs import (
    EXPECTED_FAILURES,
    FIXTURE_CLIPS,
    FIXTURE_VIDEOS,
    copy_root,
    counts,
    failures,
    last_summary,
    wait_for,
)

from bench.peak import descendants
from curate.filter import apply_filters
from curate.ray_executor import ray_map
from export.shards import ExportOptions, export
from extractors.registry import make_config
from manifests.store import DatasetRoot
from settings.config import RayConfig


def lose_the_worker_node(cluster: Cluster) -> None:
    """Kill the worker node's raylet and wait until the cluster counts one node."""
    cluster.kill_worker_raylet()
    wait_for(lambda: nodes_up(cluster.address) == 1, timeout_s=120, what="the cluster to drop the node")


def test_a_run_that_loses_a_node_resumes_on_the_survivor(
    tmp_path: Path, fixtures: Path, fast_config: Path, curate_argv: Any, two_node_cluster: Cluster
) -> None:
    out = tmp_path / "out"
    argv = curate_argv(
        "run", str(fixtures / "video"), "--out", str(out), "--config", str(fast_config),
        "--ray-address", two_node_cluster.address,
    )  # fmt: skip
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(DatasetRoot(out).committed().clips) >= 2, what="two committed clips")
        lose_the_worker_node(two_node_cluster)
        stdout, stderr = driver.communicate(timeout=600)
    finally:
        driver.kill()
    before = counts(out)
    if driver.returncode != 0:  # stopped: a clear error, every committed clip kept, none twice
        assert driver.returncode == 4, stderr
        assert "a node left the cluster?" in stderr and "the same command" in stderr, stderr[-2000:]
        assert before["clips"] == before["uclips"] < FIXTURE_CLIPS
        again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        stdout = again.stdout
    assert "1 node(s)" in stdout or driver.returncode == 0
    assert counts(out) == {
        "videos": FIXTURE_VIDEOS, "uvideos": FIXTURE_VIDEOS,
        "clips": FIXTURE_CLIPS, "uclips": FIXTURE_CLIPS, "tracks": FIXTURE_CLIPS,
    }  # fmt: skip
    assert failures(out) == EXPECTED_FAILURES  # no clip recorded as lost
    assert last_summary(out)["videos_processed"] + last_summary(out)["videos_skipped_done"] == FIXTURE_VIDEOS
    root = DatasetRoot(out)
    logged = {p.name for t in ("clips", "tracks", "videos") for p in root.parts(t)}
    assert logged == {p.name for t in ("clips", "tracks", "videos") for p in (out / t).glob("part-*")}


@pytest.fixture
def accepted(accepted_run: Any, tmp_path: Path) -> Path:
    """A copy of the accepted fixture run (its six speaking clips accepted)."""
    return copy_root(accepted_run.root, tmp_path / "accepted")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_when_busy(cluster: Cluster, killed: list[int]) -> threading.Thread:
    """A thread that kills the worker node's raylet as soon as a job of a :class:`RayMap` runs
    there (its worker process titled ``ray::_located``), its pid put in ``killed``."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if any("ray::_located" in _cmdline(p) for p in descendants(cluster.nodes[1].pid)):
                killed.append(cluster.kill_worker_raylet())
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def shard_clips(export: Path) -> dict[str, list[str]]:
    manifest = json.loads((export / "manifest.json").read_text())
    return {
        split: sorted(
            c
            for f in info["files"]
            for c in pq.read_table(export / f["file"], columns=["clip_id"])["clip_id"].to_pylist()
        )
        for split, info in manifest["splits"].items()
    }


def test_filter_and_export_spread_over_both_nodes_and_export_finishes_when_one_is_lost(
    accepted: Path, two_node_cluster: Cluster
) -> None:
    on_cluster = RayConfig(address=two_node_cluster.address)
    same_rules = {"rules": {"sync_offset": {"enabled": False}}}  # the accepted run's
    first = apply_filters(accepted, make_config(filter={**same_rules, "parts_per_job": 1}, ray=on_cluster))
    parts = len(DatasetRoot(accepted).readable_rels("clips"))
    assert len(first.jobs_by_node) == 2 and f"judged by {parts} job(s) on 2 node(s)" in first.to_text()
    options = {"clips_per_file": 1, "val_fraction": 0.2, "test_fraction": 0.2}
    reference = export(accepted, ExportOptions(name="here", **options))
    killed: list[int] = []
    watcher = kill_when_busy(two_node_cluster, killed)
    lost = export(accepted, ExportOptions(name="lost", **options), map_fn=ray_map(on_cluster))
    watcher.join(timeout=1)
    assert killed, "no export job ran on the worker node"
    expected = shard_clips(reference.path)
    assert sum(map(len, expected.values())) == first.verdicts["accept"] == 6  # the speaking clips
    assert shard_clips(lost.path) == expected  # every clip once, in its split, as without a cluster
    assert not lost.skipped
    assert {s: (i["clips"], i["groups"]) for s, i in lost.splits.items()} == {
        s: (i["clips"], i["groups"]) for s, i in reference.splits.items()
    }
    wait_for(
        lambda: nodes_up(two_node_cluster.address) == 1, timeout_s=120, what="the cluster to drop the node"
    )
    again = apply_filters(accepted, make_config(filter={**same_rules, "parts_per_job": 1}, ray=on_cluster))
    assert len(again.jobs_by_node) == 1 and again.verdicts == first.verdicts
