"""One exit-code table for every command, each error one line: a read-only root and a full disk
(real mounts, where this machine lets the tests make them), a config that is a folder or not
UTF-8, and an internal error (injected: nothing real can be made to raise one on demand)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def mount_point(tmp_path):  # type: ignore[no-untyped-def]
    """``mount("tmpfs" | "ro")``: a small tmpfs or a read-only bind mount at a fresh folder."""
    mounted = []

    def mount(kind: str):  # type: ignore[no-untyped-def]
        target = tmp_path / f"mnt_{kind}"
        target.mkdir()
        argv = (
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)]
            if kind == "tmpfs"
            else ["mount", "--bind", "-o", "ro", str(tmp_path), str(target)]
        )
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"this machine does not let the tests mount ({done.stderr.strip()})")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], capture_output=True)


@pytest.mark.parametrize("kind", ["ro", "tmpfs"])
def test_a_read_only_or_full_disk_exits_4_with_one_line(kind, mount_point, curate, video) -> None:
    target = mount_point(kind)
    out = str(target / "root")
    done = curate(
        "run", str(video("vr_face_5.mp4")), "--out", out, "--executor", "sequential", "--no-progress"
    )
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # before it, only the face model's own log lines
    assert last.startswith("error: ")
    assert ("Read-only file system" if kind == "ro" else "No space left on device") in last


def test_a_config_that_is_a_folder_or_not_utf8_exits_2(tmp_path, curate, video) -> None:
    binary = tmp_path / "latin1.toml"
    binary.write_bytes("[run]\n# caf\xe9\n".encode("latin-1"))
    for config, message in ((tmp_path, "is a folder"), (binary, "is not UTF-8 text")):
        done = curate("filter", str(tmp_path), "--config", str(config))
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_an_internal_error_exits_5_naming_its_log(tmp_path, monkeypatch, capsys) -> None:
    from curate import cli

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("something nobody expected\nsecond line")

    monkeypatch.setattr("curate.query.query", explode)
    monkeypatch.setenv("CURATE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(sys, "argv", ["curate", "query", str(tmp_path), "select 1"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("internal error: RuntimeError: something nobody expected")
    (log,) = (tmp_path / "logs").glob("crash-*.log")
    assert str(log) in err[0] and "Traceback" in log.read_text()
