"""A small Label Studio REST client: the few calls review needs, with errors that say what to do.

Authentication is the API token (``Authorization: Token ...``). The token is held in one
attribute and sent only in that header: it never appears in a message, a log line or a
manifest, and error text is built from the URL path and the server's reply, never from the
request headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

#: Tasks fetched per page when listing a project.
PAGE_SIZE = 100


class ReviewError(RuntimeError):
    """Label Studio could not be reached or refused a call; the message says which and why."""


@dataclass
class LabelStudio:
    url: str  # e.g. http://127.0.0.1:8080
    token: str = field(repr=False)
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Token {self.token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON reply (None when empty)."""
        try:
            reply = self._session.request(method, self.url + path, timeout=self.timeout_s, **kwargs)
        except requests.ConnectionError:
            raise ReviewError(
                f"cannot reach Label Studio at {self.url}: is the server running? (start it with `curate review serve`)"
            ) from None
        except requests.Timeout:
            raise ReviewError(
                f"Label Studio at {self.url} did not answer {method} {path} within {self.timeout_s:g} s"
            ) from None
        if reply.status_code in (401, 403):
            raise ReviewError(
                f"Label Studio at {self.url} refused the API token ({reply.status_code}): check "
                "LABEL_STUDIO_API_TOKEN or [review] token_file"
            )
        if reply.status_code >= 400:
            raise ReviewError(
                f"Label Studio {method} {path} failed ({reply.status_code}): {reply.text[:300]}"
            )
        return reply.json() if reply.content else None

    def projects(self) -> list[dict[str, Any]]:
        reply = self.call("GET", "/api/projects", params={"page_size": 1000})
        return reply["results"] if isinstance(reply, dict) else reply

    def tasks(self, project: int) -> Iterator[dict[str, Any]]:
        """Every task of ``project`` with its annotations, page by page."""
        page = 1
        while True:
            reply = self.call(
                "GET",
                "/api/tasks",
                params={"project": project, "page": page, "page_size": PAGE_SIZE, "fields": "all"},
            )
            batch = reply["tasks"] if isinstance(reply, dict) else reply
            yield from batch
            total = reply.get("total", 0) if isinstance(reply, dict) else len(batch)
            if not batch or page * PAGE_SIZE >= total:
                return
            page += 1

    def annotations(self, task: int) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/api/tasks/{task}/annotations"))
