"""Start a Label Studio server on loopback from its own virtual environment.

Label Studio pins packages the pipeline cannot share (pyarrow among them), so it lives in
``.venv-labelstudio`` (``scripts/setup_labelstudio.sh``). The admin user and the API token come
from the environment (``LABEL_STUDIO_USERNAME``, ``LABEL_STUDIO_PASSWORD``,
``LABEL_STUDIO_API_TOKEN``); the token is fixed at first start (legacy tokens enabled), and local
files are served from the dataset root, where ``curate review push`` writes the review media.
"""

from __future__ import annotations

import os
import subprocess
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
        cmd, env=server_env(credentials, files_root, data_dir), stdout=out, stderr=subprocess.STDOUT
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc)
    except ServerError:
        proc.terminate()
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
