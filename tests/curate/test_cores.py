"""Core claims of worker processes (curate/cores.py), with real processes and real flocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

#: A process that starts a thread, claims a core, reports the core and every thread's affinity,
#: then holds the claim until its standard input closes.
CLAIMANT = """
import json, os, sys, threading
from pathlib import Path
from curate.cores import claim_core
stop = threading.Event()
helper = threading.Thread(target=stop.wait)
helper.start()
core = claim_core(Path(sys.argv[1]))
threads = {t.name: sorted(os.sched_getaffinity(int(t.name))) for t in Path("/proc/self/task").iterdir()}
print(json.dumps({"core": core, "threads": threads}), flush=True)
sys.stdin.read()
stop.set()
"""


def claimant(folder: Path) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLAIMANT, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to claim")
def test_each_process_gets_its_own_core_until_it_dies(tmp_path: Path) -> None:
    cores = sorted(os.sched_getaffinity(0))
    first, claim = claimant(tmp_path)
    assert claim["core"] == cores[0]
    assert len(claim["threads"]) >= 2  # the helper thread started before the claim is pinned too
    assert all(cpus == [cores[0]] for cpus in claim["threads"].values())

    second, other = claimant(tmp_path)
    assert other["core"] == cores[1]
    assert all(cpus == [cores[1]] for cpus in other["threads"].values())

    first.send_signal(signal.SIGKILL)  # the kernel drops a dead process's claims
    first.wait()
    third, again = claimant(tmp_path)
    assert again["core"] == cores[0]
    for proc in (second, third):
        proc.communicate("")


def test_a_process_that_finds_every_core_claimed_stays_unpinned(tmp_path: Path) -> None:
    holders = [claimant(tmp_path)[0] for _ in os.sched_getaffinity(0)]
    late, claim = claimant(tmp_path)
    assert claim["core"] is None
    assert all(cpus == sorted(os.sched_getaffinity(0)) for cpus in claim["threads"].values())
    for proc in [*holders, late]:
        proc.communicate("")
