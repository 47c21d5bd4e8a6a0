"""The `curate` application, its command groups, and the options and checks its commands share."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from manifests.fs import RemoteRoot
from manifests.store import existing_root
from settings.config import Config
from settings.errors import InvalidInput
from settings.redact import redact

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
    typer.secho(f"warning: {redact(str(message))}", fg=typer.colors.YELLOW, err=True)


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
    """Refuse an object-store root, in one line, for the commands that need a local one, and a
    folder no run wrote (:func:`~manifests.store.existing_root`): nothing is written into it."""
    if value is not None and _URL_AS_PATH.match(str(value)):
        url = _URL_AS_PATH.sub(r"\1://", str(value))
        raise RemoteRoot(
            f"{url} is an object-store root: `{ctx.command_path}` needs a dataset root on a local disk "
            "(run, filter, query, check and compact work on object stores)"
        )
    if value is not None:
        existing_root(value)
    return value


def _local(help: str) -> Any:
    """A dataset-root argument that must be a local folder."""
    return typer.Argument(help=help, callback=_local_root)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (see curate.example.toml).", exists=False),
]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar.")]
RayAddressOption = Annotated[
    str | None,
    typer.Option(envvar="RAY_ADDRESS", help="Join the Ray cluster at this address instead of starting one."),
]
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
