"""`curate review`: Label Studio serve, push, pull, calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.options import (
    ConfigOption,
    ProgressOption,
    _local,
    review_app,
)
from extractors.registry import load_config


@review_app.command("serve")
def review_serve(
    root: Annotated[Path, _local("Dataset root whose review media the server serves.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    data_dir: Annotated[
        Path | None, typer.Option(help="Label Studio's own data (default: ROOT/_labelstudio).")
    ] = None,
) -> None:
    """Start Label Studio on loopback from .venv-labelstudio and keep it running (Ctrl-C stops it).

    The admin user and API token come from LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD and
    LABEL_STUDIO_API_TOKEN. The server stops with this command (Ctrl-C, SIGTERM, SIGHUP, or its
    death); a port where something already answers is refused.
    """
    from review.server import keep_serving, start

    proc = start(root, data_dir or root / "_labelstudio", port)
    typer.echo(f"Label Studio is up at http://127.0.0.1:{port} (Ctrl-C stops it)")
    stopped_by = keep_serving(proc)
    if stopped_by is not None:
        raise typer.Exit(128 + stopped_by)


@review_app.command("push")
def review_push(
    root: Annotated[Path, _local("Dataset root.")],
    config: ConfigOption = None,
    progress: ProgressOption = True,
) -> None:
    """Send every clip whose current verdict is review to Label Studio (most borderline first).

    Pushing again adds only the clips not yet there.
    """
    from review.project import connect
    from review.push import push

    cfg = load_config(config)
    typer.echo(push(root, cfg, connect(cfg.review), progress).to_text())


@review_app.command("pull")
def review_pull(root: Annotated[Path, _local("Dataset root.")], config: ConfigOption = None) -> None:
    """Append reviewers' verdicts to the decisions log (new and edited annotations only)."""
    from review.project import connect
    from review.pull import pull

    cfg = load_config(config)
    typer.echo(pull(root, connect(cfg.review), cfg.review.project).to_text())


@review_app.command("calibrate")
def review_calibrate(root: Annotated[Path, _local("Dataset root.")], config: ConfigOption = None) -> None:
    """Agreement of the filters with reviewers per reason, and thresholds that would agree better
    (proposed, never applied)."""
    from review.filter_agreement import calibrate

    typer.echo(calibrate(root, load_config(config)).to_text())
