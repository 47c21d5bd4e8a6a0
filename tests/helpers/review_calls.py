"""Calls the review tests make: the `curate review` command line against a test server, and an
annotation made through the API as an annotator would."""

from __future__ import annotations

import os
import subprocess

from review.project import find_project


def cli(curate_argv, server, *args, env=None):  # type: ignore[no-untyped-def]
    env = {**os.environ, **server.env(), **(env or {})}
    return subprocess.run(curate_argv("review", *args), capture_output=True, text=True, env=env, timeout=600)


def tasks_of(server, config) -> list[dict]:  # type: ignore[no-untyped-def]
    client = server.client()
    project = find_project(client, config.review.project)
    return list(client.tasks(project["id"])) if project else []


def annotate(server, task: dict, verdict: str, reasons=(), emotion=None, offset=None) -> dict:  # type: ignore[no-untyped-def]
    result = [
        {"from_name": "verdict", "to_name": "video", "type": "choices", "value": {"choices": [verdict]}}
    ]
    if reasons:
        result.append(
            {
                "from_name": "reasons",
                "to_name": "video",
                "type": "choices",
                "value": {"choices": list(reasons)},
            }
        )
    if emotion:
        result.append(
            {"from_name": "emotion", "to_name": "video", "type": "choices", "value": {"choices": [emotion]}}
        )
    if offset is not None:
        result.append(
            {"from_name": "sync_offset", "to_name": "video", "type": "number", "value": {"number": offset}}
        )
    made = server.client().sdk.annotations.create(id=task["id"], result=result)
    return made.model_dump(mode="json")
