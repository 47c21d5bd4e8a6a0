"""A real two-node Ray cluster on this machine, for the executor and node-loss tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import RAY, Cluster, free_port, nodes_up
from runs import FAST

from bench.peak import descendants


@pytest.fixture
def two_node_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """A head and a worker node started with `ray start --block` on loopback, one CPU each.

    `ray start --head` turns on token authentication; the joining node and the driver find the
    token in ~/.ray only when told that the cluster uses it. Each node runs in the foreground of
    a process of this test, so the teardown ends exactly the processes the nodes started (by
    pid), never another cluster on the machine.
    """
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--disable-usage-stats", "--node-ip-address=127.0.0.1", "--block"]
    head = [
        str(RAY),
        "start",
        "--head",
        f"--port={port}",
        "--include-dashboard=false",
        "--object-store-memory=200000000",
    ]
    worker = [str(RAY), "start", f"--address={address}", "--object-store-memory=200000000"]
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for argv, wanted in ((head + common, 1), (worker + common, 2)):
            nodes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 120
            while nodes_up(address) < wanted:
                assert time.monotonic() < deadline, f"{wanted} node(s) not up in 120 s"
                assert all(n.poll() is None for n in nodes), "a `ray start --block` ended"
                time.sleep(1)
        yield Cluster(address, nodes)
    finally:
        started = [pid for node in nodes for pid in descendants(node.pid)]
        for pid in reversed(started):  # the nodes' processes first, then the `ray start`s
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for node in nodes:
            node.wait(timeout=60)


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text(FAST)
    return path
