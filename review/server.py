"""Start a Label Studio server on loopback from its own virtual environment.

Label Studio pins packages the pipeline cannot share (pyarrow among them), so it lives in
``.venv-labelstudio`` (``scripts/setup_labelstudio.sh``). The admin user and the API token come
from the environment (``LABEL_STUDIO_USERNAME``, ``LABEL_STUDIO_PASSWORD``,
``LABEL_STUDIO_API_TOKEN``); the token is fixed at first start (legacy tokens enabled), and local
files are served from the dataset root, where ``curate review push`` writes the review media.

The server runs in a process group of its own, asked by the kernel to stop when the process that
started it dies (even by SIGKILL), and :func:`stop` ends the whole group: ``curate review serve``
leaves nothing behind. A port where something already answers is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from settings.errors import NothingToWorkOn

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".venv-labelstudio"


class ServerError(NothingToWorkOn, RuntimeError):
    """The server could not be started or did not come up."""


@dataclass(frozen=True)
class Credentials:
    """The admin user and API token, from the environment; the token is never printed."""

    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)

    @classmethod
    def from_env(cls) -> Credentials:
        missing = [
            v
            for v in ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_API_TOKEN")
            if not os.environ.get(v)
        ]
        if missing:
            raise ServerError(
                f"set {', '.join(missing)} in the environment (the admin user and its API token)"
            )
        return cls(
            os.environ["LABEL_STUDIO_USERNAME"],
            os.environ["LABEL_STUDIO_PASSWORD"],
            os.environ["LABEL_STUDIO_API_TOKEN"],
        )


def server_env(credentials: Credentials, files_root: Path, data_dir: Path) -> dict[str, str]:
    """The environment the server starts with."""
    return {
        **os.environ,
        "LABEL_STUDIO_USERNAME": credentials.username,
        "LABEL_STUDIO_PASSWORD": credentials.password,
        "LABEL_STUDIO_USER_TOKEN": credentials.token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(files_root.resolve()),
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir.resolve()),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }


#: prctl(2) option: the signal the kernel sends a child when its parent dies.
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the server's process: get SIGTERM when the process that started it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_taken(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """End the server and every process of its group: SIGTERM, then SIGKILL after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


def keep_serving(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> int | None:
    """Wait while the server runs; on SIGTERM, SIGHUP or SIGINT to this process, stop its group
    (SIGKILL after ``grace_s``) and return that signal's number; ``None`` if the server ended by
    itself."""
    received: list[tuple[int, float]] = []  # (signal, when)

    def ending(signum: int, _frame: object) -> None:
        received.append((signum, time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, ending)
    while proc.poll() is None:  # polled, not wait(): a handler may run between two polls
        time.sleep(0.2)
        if received and time.monotonic() - received[0][1] > grace_s:
            break
    if received:
        stop(proc, timeout_s=1.0)  # the rest of its group, and SIGKILL if it is still there
        return received[0][0]
    return None


def data_dir_for(root: Path) -> Path:
    """Where Label Studio keeps its data (its database holds the API token) for the dataset root
    ``root``: ``$XDG_DATA_HOME/curate/labelstudio/<root's name>-<hash of its path>`` (by default
    under ``~/.local/share``), outside the root, so that no copy of a root carries the token."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    where = root.resolve()
    return (
        base
        / "curate"
        / "labelstudio"
        / f"{where.name}-{hashlib.sha256(str(where).encode()).hexdigest()[:12]}"
    )


def start(
    files_root: Path,
    data_dir: Path,
    port: int = 8080,
    credentials: Credentials | None = None,
    venv: Path = DEFAULT_VENV,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the server on 127.0.0.1:``port`` serving local files under ``files_root``; returns
    the process once the server answers (the first start runs migrations: about half a minute)."""
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        raise ServerError(f"no Label Studio at {exe}: run `bash scripts/setup_labelstudio.sh` first")
    if port_taken(port):
        raise ServerError(
            f"something already answers on 127.0.0.1:{port} (another Label Studio?): stop it or choose --port"
        )
    credentials = credentials or Credentials.from_env()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log or data_dir / "server.log", "ab")  # noqa: SIM115 - the server keeps writing to it
    cmd = [
        str(exe),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "WARNING",
    ]
    proc = subprocess.Popen(
        cmd,
        env=server_env(credentials, files_root, data_dir),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() ends it whole
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc)
    except ServerError:
        stop(proc)
        raise
    return proc


def wait_until_up(url: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 180.0) -> None:
    """Poll ``url``/health until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(
                f"Label Studio exited with status {proc.returncode} while starting (see its log)"
            )
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1.0)
    raise ServerError(f"Label Studio at {url} did not come up within {timeout_s:g} s")
