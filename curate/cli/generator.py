"""The generator: train, eval, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.options import (
    DeviceOption,
    _print_and_save,
    _validated,
    app,
)


@app.command("train")
def train_cmd(
    export_dir: Annotated[Path, typer.Argument(help="Export folder (ROOT/exports/NAME).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder; one with a checkpoint is resumed.")],
    steps: Annotated[int | None, typer.Option(help="Optimizer steps in all (default 600).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step (default 32).")] = None,
    window_s: Annotated[float | None, typer.Option(help="Training window length, s (default 2).")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default 1e-3).")] = None,
    hidden: Annotated[
        int | None, typer.Option(help="Model width (default 64: about 143k parameters).")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Speech features: whisper-tiny-en (default) | log-mel.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader worker processes (default 0).")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Steps between checkpoints (default 200).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    device: DeviceOption = "auto",
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (steps, loss, windows/s, time left).")
    ] = True,
) -> None:
    """Train the speech -> blendshape generator on the export's train split; checkpoints in OUT.

    The speech features are encoded once and cached beside the shards; the per-channel gain is
    fitted on the val split (export with --val above 0)."""
    from generator.config import TrainConfig
    from generator.train import train

    given = {
        "steps": steps, "batch_size": batch_size, "window_s": window_s, "lr": lr, "workers": workers,
        "checkpoint_every": checkpoint_every, "seed": seed, "device": device,
    }  # fmt: skip
    model = {k: v for k, v in {"hidden": hidden, "features": features}.items() if v is not None}
    config = _validated(TrainConfig, {k: v for k, v in given.items() if v is not None} | {"model": model})
    typer.echo(train(export_dir, out, config, report=typer.echo, progress=progress).to_text())


@app.command("eval")
def eval_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `curate train`.")],
    split: Annotated[str, typer.Option(help="train | val | test")] = "test",
    export_dir: Annotated[
        Path | None, typer.Option("--export", help="Evaluate on this export (default: the one trained on).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the table as JSON.")] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Every metric (LVE_BS, MVE_BS, FDD_BS, lip lag, MTM, jitter, diversity) for the model and the baselines."""

    from generator.evaluate import evaluate

    _print_and_save(evaluate(run_dir, split, export_dir, device, report=typer.echo), json_out)


@app.command("predict")
def predict_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `curate train`.")],
    audio: Annotated[Path, typer.Argument(help="Speech: any audio (or video) file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Animation file to write.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="csv (Live Link Face) | json | npy; default: from --out's suffix."
        ),
    ] = None,
    neutral: Annotated[
        Path | None,
        typer.Option(
            help="The speaker's neutral pose: a JSON object of channel -> value (default: the model's)."
        ),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Map the output to ARKit ranges with this file (`curate calibrate`)."),
    ] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Blendshape animation for AUDIO, one row per frame at the model's rate (a Live Link Face CSV by default)."""
    from generator.predict import predict_file

    animation = predict_file(run_dir, audio, out, fmt, neutral, calibration, device)
    typer.echo(f"{out}: {len(animation.values)} frames at {animation.fps:g} fps")
