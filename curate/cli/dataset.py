"""Commands on a dataset root: run, filter, check, compact, query, report, export, calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.options import (
    AnyRoot,
    ConfigOption,
    ProgressOption,
    RayAddressOption,
    _local,
    _validated,
    _with_executor,
    app,
)
from extractors.registry import dataset_schemas, load_config
from settings.config import QUERY_MEMORY_MB, QUERY_TIMEOUT_S
from settings.errors import InvalidInput
from settings.redact import redact


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
    ray_address: RayAddressOption = None,
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
    typer.echo(redact(summary.to_text()))
    if summary.nothing_read:
        raise NothingToRead("no input could be read")


@app.command("filter")
def filter_cmd(
    root: Annotated[
        str, typer.Argument(help="Dataset root written by `curate run`. A folder or s3://bucket/prefix.")
    ],
    config: ConfigOption = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="ray (default: a root of more than [filter] parts_per_job clips parts is judged by "
            "jobs on a local cluster or --ray-address) | sequential (this process)."
        ),
    ] = None,
    ray_address: RayAddressOption = None,
) -> None:
    """Apply the [filter] thresholds to every clip (no model runs) and append a new decision set.

    Earlier decision sets stay readable; `current_decisions` shows each clip's latest verdict.
    """
    from curate.filter import apply_filters

    typer.echo(apply_filters(root, _with_executor(load_config(config), executor, ray_address)).to_text())


@app.command("check")
def check_cmd(
    root: AnyRoot,
    repair: Annotated[
        bool, typer.Option(help="Move damaged parts aside (ROOT/_quarantine) so the next run redoes them.")
    ] = False,
    quick: Annotated[
        bool, typer.Option(help="Read each part's footer only (schema), not every page.")
    ] = False,
) -> None:
    """Find parts of ROOT that are not complete Parquet files (truncated, overwritten, not regular
    files), not of their table's schema, or whose pages do not read (every part is read through
    unless --quick), damaged commit records (each has a second copy), and symbolic links, FIFOs
    and devices anywhere in ROOT; list parts no record names.

    Readers leave damaged parts and records out and a run redoes their clips; --repair rewrites a
    damaged copy of a record from the other and moves the rest aside into ROOT/_quarantine (a
    link itself, never what it points to). Nothing is written or deleted through a link.
    Exit status 1 when anything damaged or strange remains, 3 when the root is in use.
    """
    from manifests.check import check_root

    report = check_root(root, repair, dataset_schemas(), pages=not quick)
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

    typer.echo(compact(root, target_clips=target_clips, grace_s=grace, schemas=dataset_schemas()).to_text())


@app.command("query")
def query_cmd(
    root: AnyRoot,
    sql: Annotated[
        str,
        typer.Argument(
            help="SQL over the views videos, clips (with each clip's identity_id), tracks, decisions, inputs, emotion_speaker, failures, current_decisions (each clip's latest decision), speaker_emotion (each clip's latest speaker-relative emotion label), clip_emotion (the emotion label each clip goes out with: a reviewer's, else the speaker-relative one, else its own), identities (each person: centroid, clips, voices), voice_matches (each clip's voice against its person's other clips), clip_identity and identity_updates (every filing of clips among the identities)."
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json | parquet")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file (required for parquet).")
    ] = None,
    read: Annotated[
        list[str] | None,
        typer.Option("--read", help="Also let the SQL read files in this existing folder (repeatable)."),
    ] = None,
    memory_mb: Annotated[
        int,
        typer.Option(min=64, help="Memory DuckDB may use (MB); a query needing more stops with an error."),
    ] = QUERY_MEMORY_MB,
    timeout_s: Annotated[
        float, typer.Option(min=0.1, help="Seconds a query may run before it is stopped.")
    ] = QUERY_TIMEOUT_S,
) -> None:
    """Run read-only SQL over a dataset root with DuckDB and print the result.

    Only SELECT (and EXPLAIN of a SELECT) statements run, and the SQL reads no file outside ROOT
    (and the --read folders) and writes none; the result is written by curate, with --output,
    which may not lie inside ROOT. DuckDB spills nothing to disk, uses at most --memory-mb and
    is stopped after --timeout-s.
    """
    from curate.query import FORMATS, check_output, emit, query

    check_output(root, output)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: use table, csv, json or parquet")
    if fmt == "parquet" and output is None:
        raise InvalidInput("--format parquet needs --output FILE")
    emit(query(root, sql, read or (), memory_mb, timeout_s), fmt, output)  # type: ignore[arg-type]


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
            help="SQL predicate over c (clips), v (videos), d (current decision), m (clip_emotion: the emotion label used, e.g. m.emotion = 'happy') narrowing the clips."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            help="SQL expression over c, v, d giving the speaker/group id (default: the video, twins merged)."
        ),
    ] = None,
    split_by: Annotated[
        str,
        typer.Option(
            help="video: no video in two splits (twins merged) | identity: no person either (their "
            "speaker_id tag, else the identity_id of the clip's face)."
        ),
    ] = "video",
    max_per_identity_s: Annotated[
        float | None,
        typer.Option(
            help="Keep at most this many seconds of clips of any one person (speaker_id tag, else identity)."
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
    ray_address: RayAddressOption = None,
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
            name=name, where=where, group=group, split_by=split_by, max_per_identity_s=max_per_identity_s,
            val_fraction=val, test_fraction=test, test=test_where,
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
