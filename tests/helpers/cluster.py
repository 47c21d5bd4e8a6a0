"""A Ray cluster of `ray start` nodes on this machine, as the tests run it: its address, its
nodes' processes, and the kill of a node's raylet."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.peak import descendants

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nodes_up(address: str) -> int:
    """Nodes `ray status` reports active on the cluster at ``address`` (0 while it is not up)."""
    done = subprocess.run(
        [str(RAY), "status", f"--address={address}"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 or "Active:" not in done.stdout:
        return 0
    active = done.stdout.split("Active:", 1)[1].split("Pending:", 1)[0]
    return sum(line.strip().startswith("1 node_") for line in active.splitlines())


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass
class Cluster:
    """``address`` to join; ``nodes``: the `ray start --block` processes, head first."""

    address: str
    nodes: list[subprocess.Popen[bytes]]

    def kill_worker_raylet(self) -> int:
        """SIGKILL the raylet of the worker node (its workers then end too); returns its pid."""
        (raylet,) = [p for p in descendants(self.nodes[1].pid) if _name(p) == "raylet"]
        os.kill(raylet, signal.SIGKILL)
        return raylet
