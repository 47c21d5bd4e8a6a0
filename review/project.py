"""The dataset root's Label Studio project: the client from the config, the project with the
repo's labeling config and the review settings of ``[review]`` (annotators per clip, overlap,
sampling), and the local storage that serves the root's review media."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from review.client import LabelStudio, ReviewError
from settings.config import ReviewConfig

LABELING_CONFIG = Path(__file__).with_name("labeling.xml")
MEDIA_DIR = "review_media"
#: The predictions' model version: Label Studio's uncertainty sampling serves the tasks whose
#: prediction of the project's model version has the lowest score first.
MODEL_VERSION = "curate-filter-margin"
SAMPLING = {
    "uncertainty": "Uncertainty sampling",
    "sequential": "Sequential sampling",
    "uniform": "Uniform sampling",
}


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


def project_settings(config: ReviewConfig) -> dict[str, Any]:
    """The project fields ``[review]`` sets."""
    return {
        "label_config": LABELING_CONFIG.read_text(),
        "maximum_annotations": config.annotators_per_clip,
        "overlap_cohort_percentage": round(100 * config.overlap_share),
        "show_overlap_first": config.annotators_per_clip > 1,
        "sampling": SAMPLING[config.sampling],
        "model_version": MODEL_VERSION,
    }


def _differences(project: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wanted.items() if project.get(k) != v}


def ensure_project(client: LabelStudio, config: ReviewConfig, media_dir: Path) -> int:
    """Create the project (or bring its labeling config and settings up to ``config``) and its
    local storage; the settings are read back, since a server may ignore some at creation."""
    wanted = project_settings(config)
    project = find_project(client, config.project)
    if project is None:
        project = client.create_project(config.project, description="curate review", **wanted)
    pid = int(project["id"])
    different = _differences(project, wanted)
    if different:
        client.update_project(pid, **different)
        # the server keeps its own rendering of the labeling config: the other settings are checked
        left = set(_differences(client.project(pid), wanted)) - {"label_config"}
        if left:
            raise ReviewError(f"Label Studio project {pid} did not take the settings {sorted(left)}")
    media_dir.mkdir(parents=True, exist_ok=True)
    if not any(Path(s["path"]) == media_dir.resolve() for s in client.local_storages(pid)):
        client.add_local_storage(pid, str(media_dir.resolve()), "review media")
    return pid
