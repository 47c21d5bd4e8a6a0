"""The `curate` command as a user runs it: exit codes, summaries, query formats."""

from __future__ import annotations

import json
import sys
import time

import pyarrow.parquet as pq
import pytest

from manifests.store import DatasetRoot


def test_help_lists_the_commands(curate) -> None:
    done = curate("--help")
    assert done.returncode == 0
    for command in ("run", "query", "models"):
        assert command in done.stdout


def test_invalid_config_exits_2_with_the_problem(curate, tmp_path, video) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[face]\nfps = -3\nsurprise = 1\n")
    done = curate("run", str(video("vr_face_3.mp4")), "--out", str(tmp_path / "out"), "--config", str(config))
    assert done.returncode == 2
    assert "face.fps" in done.stderr and "face.surprise" in done.stderr
    assert not (tmp_path / "out").exists()


def test_nothing_readable_exits_1(curate, tmp_path, broken) -> None:
    done = curate(
        "run", str(broken.zero_byte), str(broken.fake), "--out", str(tmp_path / "out"), "--no-progress"
    )
    assert done.returncode == 1
    assert "empty_file" in done.stdout and "unreadable" in done.stdout
    assert "no input could be read" in done.stderr


def test_inputs_that_cannot_be_opened_are_named_before_anything_starts(curate, tmp_path, video) -> None:
    out = tmp_path / "out"
    started = time.perf_counter()
    done = curate("run", str(tmp_path / "missing.mp4"), str(tmp_path), "--out", str(out), "--no-progress")
    assert done.returncode == 1
    assert f"{tmp_path / 'missing.mp4'}: no such file" in done.stderr, done.stderr
    assert not out.exists(), "no root is made for a run that has nothing to read"
    assert time.perf_counter() - started < 15, "no cluster was started"
    assert len(done.stderr.strip().splitlines()) == 1


def test_run_with_recorded_failures_exits_0_and_prints_a_summary(curate, tmp_path, video, broken) -> None:
    config = tmp_path / "fast.toml"
    config.write_text('[speech]\nmodel = "whisper-tiny-en"\nlanguages = []\n')
    out = tmp_path / "out"
    done = curate(
        "run", str(video("vr_face_5.mp4")), str(broken.fake), "--out", str(out), "--config", str(config)
    )
    assert done.returncode == 0, done.stderr
    assert "videos processed    1" in done.stdout
    assert "unreadable" in done.stdout
    assert "s of video per second" in done.stdout
    assert "curate run" in done.stderr  # the progress bar
    (summary,) = (out / "runs").glob("*.json")
    assert json.loads(summary.read_text())["videos_failed"] == 1

    decision_sets = list((out / "decisions").iterdir())
    started = time.perf_counter()
    again = curate(
        "run", str(video("vr_face_5.mp4")), str(broken.fake), "--out", str(out), "--config", str(config)
    )
    assert again.returncode == 0, again.stderr
    assert "nothing new" in again.stdout and "already done        2" in again.stdout
    assert list((out / "decisions").iterdir()) == decision_sets, "no new decision set"
    assert time.perf_counter() - started < 20, "no cluster was started"
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(config.read_text() + "[filter.rules.too_short]\nmin = 3.0\n")
    changed = curate(
        "run", str(video("vr_face_5.mp4")), str(broken.fake), "--out", str(out), "--config", str(stricter)
    )
    assert changed.returncode == 0 and "decision set" in changed.stdout
    assert len(list((out / "decisions").iterdir())) == len(decision_sets) + 1, "new thresholds: a new set"

    csv = curate("query", str(out), "select speech_language, speech_text from clips", "--format", "csv")
    assert csv.returncode == 0 and "regulation" in csv.stdout and csv.stdout.startswith('"speech_language"')
    lines = curate(
        "query",
        str(out),
        "select uri, errors from videos order by regexp_extract(uri, '[^/]+$')",
        "-f",
        "json",
    ).stdout.splitlines()
    assert [json.loads(line)["uri"].rsplit("/", 1)[-1] for line in lines] == ["fake.mp4", "vr_face_5.mp4"]
    target = tmp_path / "clips.parquet"
    done = curate("query", str(out), "select * from clips", "-f", "parquet", "--output", str(target))
    assert done.returncode == 0 and pq.read_table(target).num_rows == 1
    table = curate(
        "query", str(out), "select regexp_extract(uri, '[^/]+$') as name from videos order by name"
    )
    assert table.returncode == 0
    assert "fake.mp4" in table.stdout and "vr_face_5.mp4" in table.stdout


@pytest.mark.parametrize("sql", ["select * from nowhere", "selec 1"])
def test_bad_sql_is_a_clear_error(curate, tmp_path, sql: str) -> None:
    from manifests.store import DatasetRoot

    DatasetRoot(tmp_path).commit({})  # an empty root: a commit record and no table
    done = curate("query", str(tmp_path), sql)
    assert done.returncode == 1 and done.stderr.startswith("error:")


def test_models_list_shows_licences(curate) -> None:
    done = curate("models", "list")
    assert done.returncode == 0
    assert "face-landmarker" in done.stdout and "Apache-2.0" in done.stdout and "whisper-base" in done.stdout


def test_query_only_reads_the_root(fixture_run, curate, tmp_path) -> None:
    """No writing statement runs, no file outside the root (or a --read folder) is read, no
    extension is installed, and the lock cannot be undone from the SQL."""
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    root = str(fixture_run.root)
    refused = {
        f"select * from read_csv('{outside}')": "Permission Error",
        "select * from read_csv('/etc/passwd')": "Permission Error",
        f"copy (select 1) to '{tmp_path / 'x.csv'}'": "COPY statements are refused",
        f"copy (select 1) to '{fixture_run.root / 'x.csv'}'": "COPY statements are refused",
        "install httpfs": "LOAD statements are refused",
        "select 1; set enable_external_access = true": "SET statements are refused",
    }
    for sql, message in refused.items():
        done = curate("query", root, sql)
        assert done.returncode == 1 and message in done.stderr, (sql, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists() and not (fixture_run.root / "x.csv").exists()
    allowed = curate(
        "query", root, f"select sum(a) s from read_csv('{outside}')", "--read", str(tmp_path), "-f", "csv"
    )
    assert allowed.returncode == 0 and allowed.stdout.splitlines() == ['"s"', "1"], allowed.stderr


def exit_of(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """Run the entry point (``curate.cli:main``) in this process: its exit status and stderr lines."""
    from curate import cli

    monkeypatch.setattr(sys, "argv", ["curate", *args])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    return int(stop.value.code or 0), capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (("check", "{missing}"), 1, "does not exist"),
        (("compact", "{missing}"), 1, "does not exist"),
        (("query", "{missing}", "select 1"), 1, "does not exist"),
        (("query", "{tmp}", "select 1", "-f", "xml"), 2, "unknown format 'xml'"),
        (("query", "{tmp}", "select 1", "-f", "parquet"), 2, "needs --output"),
        (("filter", "{tmp}"), 2, "is not a dataset root"),
        (("filter", "{tmp}", "--config", "{missing}.toml"), 2, "does not exist"),
        (("run", "{missing}.mp4", "--out", "{missing}", "--executor", "bogus"), 2, "--executor must be ray"),
        (("export", "{root}", "--name", "a", "--executor", "bogus"), 2, "--executor must be ray"),
        (("export", "{root}", "--name", "a/b", "--executor", "sequential"), 2, "export name 'a/b'"),
        (("export", "{missing}", "--name", "a", "--executor", "sequential"), 1, "does not exist"),
        (("report", "s3://bucket/prefix"), 2, "is an object-store root"),
        # the format is refused before the (missing) checkpoint is looked for
        (
            ("predict", "{tmp}", "{missing}.wav", "--out", "{tmp}/a.csv", "-f", "fbx"),
            2,
            "unknown format 'fbx'",
        ),
        (("predict", "{tmp}", "{missing}.wav", "--out", "{tmp}/a.csv"), 1, "no checkpoint.pt"),
        (("eval", "{tmp}", "--device", "gpu"), 2, "unknown device 'gpu'"),
        (("sync", "train", "{root}", "--out", "{tmp}/m.npz", "--features", "x"), 2, "unknown sync features"),
    ],
)
def test_each_error_is_one_line_with_its_status(monkeypatch, capsys, tmp_path, args, status, words) -> None:
    root = tmp_path / "root"  # a root no clip has reached yet
    DatasetRoot(root).adopt_legacy()
    names = {"tmp": str(tmp_path), "missing": str(tmp_path / "missing"), "root": str(root)}
    code, err = exit_of(monkeypatch, capsys, *(a.format(**names) for a in args))
    assert code == status, err
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert not (tmp_path / "missing").exists()


def test_a_root_held_by_a_run_exits_3(monkeypatch, capsys, tmp_path) -> None:
    from manifests.lock import hold
    from manifests.store import DatasetRoot

    DatasetRoot(tmp_path).commit({})
    with hold(DatasetRoot(tmp_path), "holder-run"):
        code, err = exit_of(monkeypatch, capsys, "compact", str(tmp_path))
    assert code == 3 and len(err) == 1 and "is in use by" in err[0] and "holder-run" in err[0], err


def test_a_workers_error_is_judged_by_its_cause(monkeypatch, capsys, tmp_path) -> None:
    """Ray hands a worker's exception to the driver wrapped, the original in ``cause``."""
    from curate.filter import NoClips

    class Wrapped(Exception):
        def __init__(self, cause: Exception) -> None:
            super().__init__(f"Traceback (most recent call last):\n  ...\n{cause!r}")
            self.cause = cause

    def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Wrapped(NoClips("the worker found no clips"))

    monkeypatch.setattr("curate.filter.apply_filters", wrapped)
    assert exit_of(monkeypatch, capsys, "filter", str(tmp_path)) == (1, ["error: the worker found no clips"])


def test_the_installed_command_maps_errors_too(curate, tmp_path) -> None:
    missing = curate("check", str(tmp_path / "missing"))
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: dataset root {tmp_path / 'missing'} does not exist"
    ]
    DatasetRoot(tmp_path).adopt_legacy()  # a root no clip has reached yet
    bogus = curate("export", str(tmp_path), "--name", "a", "--executor", "bogus")
    assert bogus.returncode == 2 and bogus.stderr.startswith("error: --executor must be ray or sequential")
