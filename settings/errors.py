"""The errors a command reports to its user, each carrying the exit status of the README's table.

Every error a user can cause (or cure) derives from one of the four classes below; the
``curate`` entry point (``curate.cli.main``) prints it as one line, ``error: <message>``, and
exits with its ``exit_status``. A module's own error class keeps the builtin base its callers
catch it by, e.g. ``class ConfigError(InvalidInput, ValueError)``.

======  ==========================================================================================
status  meaning
======  ==========================================================================================
0       done; recorded failures included
1       :class:`NothingToWorkOn`: nothing could be read, or what the command works on or with is
        not there (no clips, no such root, no checkpoint, no verified model, no review server)
2       :class:`InvalidInput`: invalid config or arguments
3       :class:`RootInUse`: the dataset root is in use by another live run
4       :class:`EnvironmentRefused`: a read-only or full disk, no permission (an unexpected
        ``OSError`` is reported with this status too)
5       :data:`EXIT_INTERNAL`: anything else, a bug; the message names the crash log
======  ==========================================================================================

This module is the bottom of the bottom layer: it imports nothing of the project.
"""

from __future__ import annotations

from typing import ClassVar

#: Exit status of an internal error (one no command expects): its traceback goes to a crash log.
EXIT_INTERNAL = 5


class CurateError(Exception):
    """An error the user is told about in one line; ``exit_status`` is the command's exit status.

    Raise one of the subclasses below (or a module's class derived from one), not this one."""

    exit_status: ClassVar[int] = 1


class NothingToWorkOn(CurateError):
    """Status 1: nothing could be read, or what the command works on or with is not there."""

    exit_status = 1


class InvalidInput(CurateError):
    """Status 2: the configuration or an argument is invalid."""

    exit_status = 2


class RootInUse(CurateError):
    """Status 3: another live run holds the dataset root."""

    exit_status = 3


class EnvironmentRefused(CurateError):
    """Status 4: the environment refused (a read-only or full disk, no permission)."""

    exit_status = 4


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters: how an error is told in a
    row, a summary or a message."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."
