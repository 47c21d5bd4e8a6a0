"""`curate review`: Label Studio serve, push, pull, annotators, gold, calibrate."""

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
        Path | None,
        typer.Option(
            help="Label Studio's own data, its database with the API token among them (default: a"
            " folder of the root's own under ~/.local/share/curate/labelstudio, never inside the root)."
        ),
    ] = None,
) -> None:
    """Start Label Studio on loopback from .venv-labelstudio and keep it running (Ctrl-C stops it).

    The admin user and API token come from LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD and
    LABEL_STUDIO_API_TOKEN. The server stops with this command (Ctrl-C, SIGTERM, SIGHUP, or its
    death); a port where something already answers is refused.
    """
    from review.server import data_dir_for, keep_serving, start

    proc = start(root, data_dir or data_dir_for(root), port)
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
    typer.echo(pull(root, connect(cfg.review), cfg.review).to_text())


@review_app.command("annotators")
def review_annotators(root: Annotated[Path, _local("Dataset root.")], config: ConfigOption = None) -> None:
    """Each annotator's accuracy on gold clips, agreement with the clip verdicts and estimated
    quality (flagged below [review] min_annotator_accuracy), and Krippendorff's alpha overall,
    per pull and per filter reason. Reads the root only: pull first."""
    from review.annotators import annotators

    typer.echo(annotators(root, load_config(config).review).to_text())


@review_app.command("gold")
def review_gold(
    root: Annotated[Path, _local("Dataset root.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", help="CSV of `clip_id,verdict` lines (verdict: accept or reject)."),
    ] = None,
    from_reviews: Annotated[
        bool,
        typer.Option(
            "--from-reviews",
            help="Also take review verdicts at [review] gold_confidence from annotators_per_clip or more annotations.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Mark clips whose verdict is known as gold: push mixes them into the queue at [review]
    gold_rate to measure annotators, and their verdict outranks every other."""
    from manifests.store import DatasetRoot
    from review.gold import add_gold, confident_reviews, read_gold_file

    cfg = load_config(config)
    verdicts = read_gold_file(file) if file else {}
    if from_reviews:
        verdicts = {**confident_reviews(DatasetRoot(root), cfg.review), **verdicts}
    if not verdicts:
        raise typer.BadParameter("give --file, --from-reviews or both")
    n = add_gold(root, verdicts, "user" if file else "confident review")
    typer.echo(f"{n} gold clip(s) added ({len(verdicts) - n} already gold)")


@review_app.command("calibrate")
def review_calibrate(root: Annotated[Path, _local("Dataset root.")], config: ConfigOption = None) -> None:
    """Agreement of the filters with reviewers per reason, and thresholds that would agree better
    (proposed, never applied)."""
    from review.filter_agreement import calibrate

    typer.echo(calibrate(root, load_config(config)).to_text())
