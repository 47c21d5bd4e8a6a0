"""The ``curate`` command line: each subcommand parses its options and calls one library function.

Exit status (every command; the README's table): 0 done (recorded failures included); 1 nothing
could be read, or the command's input has nothing to work on; 2 invalid configuration or
arguments; 3 the dataset root is in use; 4 the environment refused (a read-only or full disk,
no permission); 5 an internal error, its traceback in the file the message names. Errors are
one line on standard error.

The libraries raise :class:`settings.errors.CurateError` subclasses, which carry their status;
:func:`main` alone turns an error into its line and status. A command catches nothing.

The commands live by subject: ``dataset`` (run, filter, check, compact, query, report, export,
calibrate), ``learned`` (sync, emotion), ``review``, ``models``, ``generator`` (train, eval,
predict); ``options`` holds the application, its groups and the options they share.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import typer

from curate.cli import dataset, generator, learned, models, review  # noqa: F401 - registers the commands
from curate.cli.options import app
from settings.errors import EXIT_INTERNAL, CurateError, EnvironmentRefused, NothingToWorkOn, one_line
from settings.redact import redact

__all__ = ["app", "main"]


def _crash_log() -> Path:
    """Where an internal error's traceback goes: ``$CURATE_LOG_DIR`` or ``~/.cache/curate/logs``."""
    folder = Path(os.environ.get("CURATE_LOG_DIR", "~/.cache/curate/logs")).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"


def _say(line: str) -> None:
    typer.secho(redact(line), fg=typer.colors.RED, err=True)


#: Libraries whose own errors (not ``OSError``) mean that an object store or the network did not
#: answer: the environment refused, not a fault of the command.
_NETWORK_LIBRARIES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec")


def _unreachable(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in _NETWORK_LIBRARIES


#: What DuckDB and Arrow say when the pages of a Parquet file do not decode (a part damaged
#: in its middle, its magic bytes and footer intact).
_DAMAGED_PAGES = ("TProtocolException", "Corrupt", "CRC checksum", "Could not decompress", "Invalid data")


def _damaged_pages(exc: BaseException) -> bool:
    library = type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "pyarrow")
    return (library or isinstance(exc, OSError)) and any(w in str(exc) for w in _DAMAGED_PAGES)


def _stop_damaged(exc: BaseException) -> None:
    _say(
        f"error: a part of the root does not decode ({one_line(exc)}): `curate check ROOT` names it"
        " and `--repair` moves it aside (the next run redoes its clips)"
    )
    raise SystemExit(NothingToWorkOn.exit_status) from None


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
        if _damaged_pages(exc):
            _stop_damaged(exc)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _say(f"error: {exc.strerror or exc}{where}")
        raise SystemExit(EnvironmentRefused.exit_status) from None
    except Exception as exc:
        if _damaged_pages(exc):
            _stop_damaged(exc)
        if _unreachable(exc):
            _say(f"error: the object store did not answer: {one_line(exc)}")
            raise SystemExit(EnvironmentRefused.exit_status) from None
        log = _crash_log()
        log.write_text(redact(traceback.format_exc()))
        _say(f"internal error: {one_line(exc)} (traceback in {log})")
        raise SystemExit(EXIT_INTERNAL) from None
