"""The calls review makes to Label Studio, through the official SDK (``label-studio-sdk``), with
errors that say what to do.

Authentication is the API token: the SDK sends it in the ``Authorization`` header and nowhere
else. This module holds it in one attribute and never puts it in a message, a log line or a
manifest; error text is built from the call's name and the server's reply. Replies come back as
plain JSON-like dicts (the SDK's models dumped), so the rest of review does not depend on the
SDK's types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from label_studio_sdk.client import LabelStudio as Sdk
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.types import ImportApiRequest

from settings.errors import NothingToWorkOn

#: Tasks fetched per page when listing a project.
PAGE_SIZE = 100


class ReviewError(NothingToWorkOn, RuntimeError):
    """Label Studio could not be reached or refused a call; the message says which and why."""


def _plain(item: Any) -> dict[str, Any]:
    """An SDK model (or a dict) as a JSON-like dict, extra fields of the server's reply kept."""
    if hasattr(item, "model_dump"):
        return dict(item.model_dump(mode="json", by_alias=True))
    return dict(item)


@dataclass
class LabelStudio:
    url: str  # e.g. http://127.0.0.1:8080
    token: str = field(repr=False)
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.sdk = Sdk(base_url=self.url, api_key=self.token, timeout=self.timeout_s)

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Turn the SDK's and httpx's errors of one call into a :class:`ReviewError`."""
        try:
            yield
        except httpx.ConnectError:
            raise ReviewError(
                f"cannot reach Label Studio at {self.url}: is the server running? (start it with `curate review serve`)"
            ) from None
        except httpx.TimeoutException:
            raise ReviewError(
                f"Label Studio at {self.url} did not answer ({what}) within {self.timeout_s:g} s"
            ) from None
        except ApiError as exc:
            if exc.status_code in (401, 403):
                raise ReviewError(
                    f"Label Studio at {self.url} refused the API token ({exc.status_code}): check "
                    "LABEL_STUDIO_API_TOKEN or [review] token_file"
                ) from None
            raise ReviewError(
                f"Label Studio: {what} failed ({exc.status_code}): {str(exc.body)[:300]}"
            ) from None

    def projects(self) -> list[dict[str, Any]]:
        with self._calling("listing projects"):
            projects: Iterator[Any] = iter(self.sdk.projects.list(page_size=1000))
            return [_plain(p) for p in projects]

    def create_project(self, title: str, **settings: Any) -> dict[str, Any]:
        """A new project; ``settings`` are project fields (label_config, maximum_annotations...)."""
        with self._calling(f"creating project {title!r}"):
            return _plain(self.sdk.projects.create(title=title, **settings))

    def project(self, project: int) -> dict[str, Any]:
        with self._calling(f"reading project {project}"):
            return _plain(self.sdk.projects.get(id=project))

    def update_project(self, project: int, **settings: Any) -> None:
        with self._calling(f"updating project {project}"):
            self.sdk.projects.update(id=project, **settings)

    def set_overlap(self, task: int, overlap: int) -> None:
        """Ask for ``overlap`` annotations of ``task`` (it is served again until it has them)."""
        with self._calling(f"updating task {task}"):
            self.sdk.tasks.update(id=str(task), overlap=overlap, is_labeled=False)

    def local_storages(self, project: int) -> list[dict[str, Any]]:
        with self._calling(f"listing the local storages of project {project}"):
            return [_plain(s) for s in self.sdk.import_storage.local.list(project=project)]

    def add_local_storage(self, project: int, path: str, title: str) -> None:
        with self._calling(f"adding local storage {path}"):
            self.sdk.import_storage.local.create(project=project, path=path, title=title, use_blob_urls=False)

    def import_tasks(self, project: int, tasks: Sequence[dict[str, Any]]) -> None:
        with self._calling(f"importing {len(tasks)} task(s) into project {project}"):
            # constructed as the REST API takes them: the SDK's model wants a task id in each
            # prediction, which a task being imported does not have yet
            request = [ImportApiRequest.model_construct(**t) for t in tasks]
            self.sdk.projects.import_tasks(id=project, request=request)

    def users(self) -> list[dict[str, Any]]:
        with self._calling("listing users"):
            return [_plain(u) for u in self.sdk.users.list()]

    def tasks(self, project: int) -> Iterator[dict[str, Any]]:
        """Every task of ``project`` with its annotations, page by page."""
        with self._calling(f"listing the tasks of project {project}"):
            tasks: Iterator[Any] = iter(
                self.sdk.tasks.list(project=project, page_size=PAGE_SIZE, fields="all")
            )
            for task in tasks:
                yield _plain(task)

    def annotations(self, task: int) -> list[dict[str, Any]]:
        with self._calling(f"listing the annotations of task {task}"):
            return [_plain(a) for a in self.sdk.annotations.list(id=task)]
