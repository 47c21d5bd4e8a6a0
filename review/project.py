"""The dataset root's Label Studio project: the client from the config, the project with the
repo's labeling config, and the local storage that serves the root's review media."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from review.client import LabelStudio, ReviewError
from settings.config import ReviewConfig

LABELING_CONFIG = Path(__file__).with_name("labeling.xml")
MEDIA_DIR = "review_media"


def api_token(config: ReviewConfig) -> str:
    """The API token from ``[review] token_file`` or ``LABEL_STUDIO_API_TOKEN``."""
    if config.token_file:
        path = Path(config.token_file).expanduser()
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ReviewError(f"cannot read the API token file {path}: {exc.strerror}") from None
    else:
        token = os.environ.get("LABEL_STUDIO_API_TOKEN", "").strip()
    if not token:
        raise ReviewError("no Label Studio API token: set LABEL_STUDIO_API_TOKEN or [review] token_file")
    return token


def connect(config: ReviewConfig) -> LabelStudio:
    return LabelStudio(os.environ.get("LABEL_STUDIO_URL", config.url), api_token(config))


def find_project(client: LabelStudio, title: str) -> dict[str, Any] | None:
    return next((p for p in client.projects() if p["title"] == title), None)


def ensure_project(client: LabelStudio, title: str, media_dir: Path) -> int:
    """Create the project (or bring its labeling config up to the repo's) and its local storage."""
    label_config = LABELING_CONFIG.read_text()
    project = find_project(client, title)
    if project is None:
        project = client.create_project(title, label_config, "curate review")
    elif project.get("label_config") != label_config:
        client.set_label_config(int(project["id"]), label_config)
    pid = int(project["id"])
    media_dir.mkdir(parents=True, exist_ok=True)
    if not any(Path(s["path"]) == media_dir.resolve() for s in client.local_storages(pid)):
        client.add_local_storage(pid, str(media_dir.resolve()), "review media")
    return pid
