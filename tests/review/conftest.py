"""A real Label Studio server for the review tests, started the way users start it
(``review.server.start`` from ``.venv-labelstudio``), with a user and token made up per session."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate.filter import apply_filters
from extractors.registry import load_config
from review.client import LabelStudio
from review.server import DEFAULT_VENV, Credentials, start, stop
from settings.config import Config, ReviewConfig

#: A band that puts every speaking fixture clip in review (their speech ratios are 0.77-0.98).
REVIEW_BAND = "[filter.rules.little_speech]\nmin = 0.9\nband = 0.2\n"


@dataclass(frozen=True)
class Server:
    url: str
    credentials: Credentials
    files_root: Path  # the server's local-files document root: dataset roots live under it
    log: Path

    def client(self, token: str | None = None) -> LabelStudio:
        return LabelStudio(self.url, token or self.credentials.token)

    def env(self) -> dict[str, str]:
        """Environment of a `curate review` command line pointed at this server."""
        return {
            "LABEL_STUDIO_URL": self.url,
            "LABEL_STUDIO_API_TOKEN": self.credentials.token,
            "LOCAL_FILES_DOCUMENT_ROOT": str(self.files_root),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not (DEFAULT_VENV / "bin" / "label-studio").exists():
        pytest.skip("Label Studio is not installed: run `bash scripts/setup_labelstudio.sh`")
    files_root = tmp_path_factory.mktemp("review_files")
    data_dir = tmp_path_factory.mktemp("labelstudio")
    credentials = Credentials("admin@example.com", secrets.token_urlsafe(12), secrets.token_hex(20))
    port = free_port()
    proc = start(files_root, data_dir, port, credentials)
    try:
        yield Server(f"http://127.0.0.1:{port}", credentials, files_root, data_dir / "server.log")
    finally:
        stop(proc)


@pytest.fixture
def review_root(fixture_run, label_studio: Server, tmp_path: Path) -> tuple[Path, Config, Path]:
    """A copy of the fixture run under the server's files root, filtered with a band that sends
    the speaking clips to review; the config (its review project named after the test) and its file."""
    root = label_studio.files_root / tmp_path.name
    shutil.copytree(fixture_run.root, root, ignore=shutil.ignore_patterns(".lock"))
    config_file = tmp_path / "review.toml"
    config_file.write_text(REVIEW_BAND + f'[review]\nproject = "review {tmp_path.name}"\nbatch = 2\n')
    config = load_config(config_file)
    config = config.model_copy(
        update={"review": ReviewConfig(**{**config.review.model_dump(), "url": label_studio.url})}
    )
    apply_filters(root, config)
    return root, config, config_file
