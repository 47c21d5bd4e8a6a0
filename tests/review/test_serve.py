"""`curate review serve` stops its Label Studio with it (SIGTERM, SIGHUP, Ctrl-C, or its own death
by SIGKILL) and refuses a port where something already answers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from manifests.store import DatasetRoot
from review.server import port_taken

from .conftest import Server, free_port

pytestmark = pytest.mark.slow  # starts Label Studio


def _env(server: Server) -> dict[str, str]:
    creds = server.credentials
    return {
        **os.environ,
        "LABEL_STUDIO_USERNAME": creds.username,
        "LABEL_STUDIO_PASSWORD": creds.password,
        "LABEL_STUDIO_API_TOKEN": creds.token,
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A dataset root no clip has reached yet (its commit log begun)."""
    DatasetRoot(tmp_path).adopt_legacy()
    return tmp_path


def test_serve_refuses_a_folder_that_is_not_a_root(curate_argv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        curate_argv("review", "serve", str(tmp_path)), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "is not a dataset root" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written into it


def _servers_on(port: int) -> list[str]:
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if "label-studio" in line and f"--port {port}" in line]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=["term", "hup", "kill"])
def test_the_server_stops_with_the_command(label_studio: Server, curate_argv, root: Path, sig) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    serve = subprocess.Popen(
        curate_argv("review", "serve", str(root), "--port", str(port), "--data-dir", str(root.parent / "ls")),
        env=_env(label_studio),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = serve.stdout.readline() if serve.stdout else ""
        assert "is up" in line, (
            line,
            serve.stderr.read() if serve.poll() is not None and serve.stderr else "",
        )
        assert port_taken(port) and _servers_on(port)
        serve.send_signal(sig)
        serve.wait(timeout=60)
        deadline = time.monotonic() + 30
        while (port_taken(port) or _servers_on(port)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not port_taken(port) and not _servers_on(port), _servers_on(port)
    finally:
        if serve.poll() is None:
            serve.kill()


def test_a_port_where_something_answers_is_refused(label_studio: Server, curate_argv, root: Path) -> None:  # type: ignore[no-untyped-def]
    port = label_studio.url.rsplit(":", 1)[1]
    done = subprocess.run(
        curate_argv("review", "serve", str(root), "--port", port),
        env=_env(label_studio),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and f"something already answers on 127.0.0.1:{port}" in done.stderr
    assert "is up" not in done.stdout
