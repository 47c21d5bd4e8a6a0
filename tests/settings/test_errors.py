"""Every error a user can meet carries its exit status (settings/errors.py): each project error
class derives from one of the four statuses, or is named here as one that never reaches a user."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from settings.errors import CurateError, EnvironmentRefused, InvalidInput, NothingToWorkOn, RootInUse

PACKAGES = (
    "curate",
    "export",
    "manifests",
    "ingest",
    "extractors",
    "filters",
    "review",
    "generator",
    "settings",
)
STATUSES = {NothingToWorkOn: 1, InvalidInput: 2, RootInUse: 3, EnvironmentRefused: 4}

#: Exceptions that stay inside the project: caught where raised (a failure row, a skipped clip,
#: a model source tried), a warning, or a bug (exit 5 with a crash log).
INTERNAL = {
    "export.shards.ClipUnusable",  # one clip left out of an export, listed in its manifest
    "ingest.probe.ProbeFailure",  # a failure row of the video
    "manifests.store.SchemaMismatch",  # records that disagree with their schema: a bug
    "manifests.views.DamagedPart",  # a warning
    "manifests.store.DamagedRecord",  # a warning
    "settings.models.ChecksumMismatch",  # one copy of a model tried; ModelUnavailable if none verifies
}

#: Where a status is a promise of the README or of a command's help.
EXPECTED = {
    "settings.config.ConfigError": 2,
    "curate.filter.UnknownColumn": 2,
    "manifests.fs.RemoteRoot": 2,
    "generator.livelink.UnknownFormat": 2,
    "manifests.lock.RootBusy": 3,
    "manifests.lock.LockLost": 3,
    "curate.run.NothingToRead": 1,
    "curate.filter.NoClips": 1,
    "manifests.store.NoSuchRoot": 1,
    "export.shards.ExportError": 1,
    "generator.checkpoint.NoCheckpoint": 1,
}


def project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            module = importlib.import_module(info.name)
            for name, cls in vars(module).items():
                if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == info.name:
                    found[f"{info.name}.{name}"] = cls
    return found


def test_every_project_error_has_one_of_the_four_statuses() -> None:
    found = project_exceptions()
    assert set(found) >= INTERNAL, "an internal exception named here is gone: update INTERNAL"
    for name, cls in found.items():
        if name in INTERNAL or name.startswith("settings.errors."):
            continue
        assert issubclass(cls, CurateError), f"{name}: derive it from a settings.errors class, or list it"
        (status,) = {STATUSES[base] for base in STATUSES if issubclass(cls, base)}  # one, not two
        assert cls.exit_status == status, name
        assert EXPECTED.get(name, status) == status, name


def test_builtin_bases_are_kept_for_callers_that_catch_them() -> None:
    from generator.checkpoint import NoCheckpoint
    from manifests.store import NoSuchRoot
    from settings.config import ConfigError

    assert issubclass(ConfigError, ValueError)
    for cls in (NoCheckpoint, NoSuchRoot):
        assert issubclass(cls, FileNotFoundError)
        assert str(cls("dataset root x does not exist")) == "dataset root x does not exist"
    with pytest.raises(ValueError):
        raise ConfigError("x")
