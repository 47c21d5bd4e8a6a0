"""What a hostile or unlucky user hands the commands, each ending with its documented exit
status and one line naming the file, in the entry point itself (``curate.cli:main``): config
values of the wrong type or repeated, a FIFO as config or checkpoint, list files that name
themselves, review commands on folders that are not roots, an object store that does not
answer, a Ray head that accepts no connection. Nothing is written where nothing should be."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from batch_rows import fill, zero_pages

from manifests.store import DatasetRoot
from tests.conftest import fixtures_dir

VIDEO = str(fixtures_dir() / "video" / "vr_face_5.mp4")


def exit_of(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    from curate import cli

    monkeypatch.setattr(sys, "argv", ["curate", *args])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    return int(stop.value.code or 0), capsys.readouterr().err.strip().splitlines()


def made(tmp: Path) -> dict[str, str]:
    """The files the cases name, made in ``tmp``."""
    root = tmp / "root"
    DatasetRoot(root).adopt_legacy()  # a root no clip has reached yet
    (tmp / "type.toml").write_text("[speech]\nbeam_size = true\n")
    (tmp / "twice.toml").write_text('[run]\nextractors = ["face", "face"]\n')
    os.mkfifo(tmp / "fifo.toml")
    (tmp / "self.txt").write_text(f"{tmp / 'self.txt'}\n")
    (tmp / "a.txt").write_text(f"{VIDEO}\n{tmp / 'b.txt'}\n")
    (tmp / "b.txt").write_text(f"{tmp / 'a.txt'}\n")
    (tmp / "run").mkdir()
    os.mkfifo(tmp / "run" / "checkpoint.pt")
    (tmp / "plain").mkdir()
    zeroed = DatasetRoot(tmp / "zeroed")
    fill(zeroed, videos=2, clips_per_video=50, batch=50)
    zero_pages(zeroed.parts("clips")[0])
    return {"tmp": str(tmp), "root": str(root), "out": str(tmp / "out"), "zeroed": str(tmp / "zeroed")}


CASES = [
    (("filter", "{root}", "--config", "{tmp}/type.toml"), 2, "type.toml: speech.beam_size: Input should be"),
    (("filter", "{root}", "--config", "{tmp}/twice.toml"), 2, "extractors names 'face' more than once"),
    (("filter", "{root}", "--config", "{tmp}/fifo.toml"), 2, "fifo.toml is a FIFO, not a regular file"),
    (("run", "{tmp}/self.txt", "--out", "{out}"), 2, "self.txt names itself"),
    (("run", "{tmp}/a.txt", "--out", "{out}"), 2, "a.txt -> {tmp}/b.txt -> {tmp}/a.txt"),
    (("predict", "{tmp}/run", VIDEO, "--out", "{tmp}/p.csv"), 2, "checkpoint {tmp}/run/checkpoint.pt is a FIFO"),
    (("review", "serve", "{tmp}/plain"), 2, "{tmp}/plain is not a dataset root"),
    (("review", "push", "{tmp}/nowhere"), 1, "{tmp}/nowhere does not exist"),
    (("report", "{tmp}/plain"), 2, "{tmp}/plain is not a dataset root"),
    (("report", "{zeroed}", "--out", "{tmp}/r.html"), 1, "a part of the root does not decode"),
    (("query", "s3://bucket/prefix", "select 1"), 4, "the object store did not answer"),
    (("run", VIDEO, "--out", "{out}", "--no-progress", "--ray-address", "127.0.0.1:1"), 4, "could not join the Ray cluster at 127.0.0.1:1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "status", "words"), CASES, ids=[" ".join(c[0][:2]) + f"-{i}" for i, c in enumerate(CASES)]
)
def test_each_probe_is_one_line_with_its_status(monkeypatch, capsys, tmp_path, args, status, words) -> None:  # type: ignore[no-untyped-def]
    names = made(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a closed port: the store does not answer
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, err = exit_of(monkeypatch, capsys, *(a.format(**names) for a in args))
    assert code == status, err
    assert len(err) == 1 and err[0].startswith("error: ") and words.format(**names) in err[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing written"


@pytest.fixture(autouse=True)
def _forget_the_dead_store() -> Iterator[None]:
    """fsspec keeps each S3 filesystem it made, with the endpoint read then: the closed port of
    these cases must not be what the object-store tests of this process get."""
    yield
    fsspec.get_filesystem_class("s3").clear_instance_cache()
