"""A dataset root on an object store, against a real S3-compatible server: ``moto_server`` started
here as a process of its own on a loopback port (the client speaks HTTP to it, nothing is mocked).

Commits, snapshots and compaction behave as on disk (every reader sees each row once, also when
compaction is killed with SIGKILL at each step of its commit); the lock is a lease object created
and renewed with conditional PUTs; and a ``curate run --out s3://...`` killed with SIGKILL after
some batches are committed resumes with the same command to exact counts, read back with
``curate query s3://...``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from batch_rows import KILL_AT, SCHEMAS, clip_rows, compact_killed_at, counts, fill

from manifests.batch import BatchWriter
from manifests.compact import compact
from manifests.lock import LockLost, RootBusy, hold
from manifests.store import DatasetRoot, records_to_table
from manifests.views import DamagedPart

pytestmark = pytest.mark.slow  # starts a server

MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = "curate-test"

# The fixture facts and the fast config of tests/curate/test_ray.py: the 11 fixture videos give 13
# clips; batches of two clips, so that a kill lands between commits.
FIXTURE_VIDEOS, FIXTURE_CLIPS = 11, 13
EXPECTED_FAILURES = {"no_speech": 5, "no_face": 3, "no_audio": 2}
FAST = '[run]\nbatch_clips = 2\n[speech]\nmodel = "whisper-tiny-en"\nlanguages = []\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on a free loopback port with an empty bucket; the environment points every
    client (this process and the ones it starts) at it. Yields the bucket's URL."""
    if not MOTO.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]', a dev dependency)")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.1)
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "FSSPEC_S3_ENDPOINT_URL"):
                mp.delenv(name, raising=False)
            for name, value in env.items():
                mp.setenv(name, value)
            import fsspec

            fsspec.filesystem("s3", use_listings_cache=False).mkdir(BUCKET)
            yield f"s3://{BUCKET}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3_root(s3_server: str, request: pytest.FixtureRequest) -> str:
    """A fresh prefix of the bucket for one test."""
    return f"{s3_server}/{request.node.name.replace('[', '-').rstrip(']')}-{time.time_ns()}"


def objects(root: DatasetRoot, folder: str) -> set[str]:
    return set(root.storage.files(folder))


def test_commits_snapshots_and_compaction_on_s3(s3_root: str) -> None:
    root = DatasetRoot(s3_root)
    assert root.remote and not root.exists() and counts(root) == (0, 0, 0, 0)
    writer = BatchWriter(root, SCHEMAS, max_clips=3, max_wait_s=3600)
    for clip, track in clip_rows(99, 2):
        writer.add_clip(clip, track)
    assert counts(root) == (0, 0, 0, 0)  # held, not committed
    writer.add_clip(*clip_rows(99, 3)[2])
    assert counts(root) == (3, 3, 3, 0) and len(root.committed().clips) == 3
    fill(root, videos=20, clips_per_video=3, batch=3)
    expected = (63, 63, 63, 20)
    uris = [root.locate(rel) for rel in root.part_rels("clips")]
    assert counts(root) == expected and len(uris) == 21
    assert all(u.startswith(s3_root + "/clips/part-") for u in uris)

    # A part written without its record (a writer killed before committing) is invisible and swept.
    clip, _ = clip_rows(50, 1)[0]
    table = records_to_table([clip], SCHEMAS["clips"])
    root.write_parquet("clips/part-killed.parquet", lambda p: pq.write_table(table, p))
    assert counts(root) == expected and "part-killed.parquet" in objects(root, "clips")

    seen: list[tuple[int, ...]] = []
    stop = threading.Event()

    def read() -> None:
        reader = DatasetRoot(s3_root)  # a reader of its own, as another process would be
        while not stop.is_set():
            seen.append(counts(reader))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        report = compact(s3_root, target_clips=30, grace_s=600)
    finally:
        stop.set()
        thread.join()
    assert seen and set(seen) == {expected}, set(seen)
    assert counts(root) == expected and report.root == s3_root
    # 21 batches of 3 clips in groups of 30: two full groups, and the last batch joins the second
    # unless the writer's final videos-only part sorts after it and merges with it (the keys'
    # order follows the clock): 2 or 3 files, every batch merged
    assert report.files_after["clips"] == report.files_after["tracks"] in (2, 3)
    assert report.merged >= 21 * 2 + 20
    assert "part-killed.parquet" not in objects(root, "clips")  # the orphan went at once
    assert len(objects(root, "_log")) == 1  # the checkpoint alone
    assert len(objects(root, "clips")) > 3  # merged-away parts wait out the grace period
    compact(s3_root, target_clips=30, grace_s=0)
    assert len(objects(root, "clips")) == report.files_after["clips"] and counts(root) == expected
    assert len(root.committed().done_videos) == 20
    assert root.read_table("videos", ["video_id"]).num_rows == 20  # type: ignore[union-attr]


def test_a_damaged_part_on_s3_is_left_out_and_moved_aside(s3_root: str) -> None:
    root = DatasetRoot(s3_root)
    fill(root, videos=4, clips_per_video=2, batch=2)
    # A batch with a video row (the first batch of fill() has none; keys are random within a second).
    victim = sorted(objects(root, "tracks") & objects(root, "videos"))[0]
    root.write_file(f"tracks/{victim}", b"PAR1 overwritten by something else")
    fresh = DatasetRoot(s3_root)  # a process that has not seen the part whole
    with pytest.warns(DamagedPart, match=victim):
        assert counts(fresh) == (8, 8, 6, 4)
    assert len(fresh.committed().clips) == 6  # that batch's clips are not done: a run redoes them
    moved = fresh.quarantine()
    assert {a for a, _ in moved} == {f"{t}/{victim}" for t in ("clips", "tracks", "videos")}
    assert all(b.startswith("_quarantine/") for _, b in moved)
    assert victim not in objects(fresh, "tracks") and counts(fresh) == (6, 6, 6, 3)
    assert len(fresh.storage.files("_quarantine/tracks")) == 1


@pytest.mark.parametrize("step", list(KILL_AT))
def test_kill_9_during_compaction_on_s3_loses_and_duplicates_nothing(s3_root: str, step: str) -> None:
    root = DatasetRoot(s3_root)
    fill(root, videos=20, clips_per_video=3, batch=3)
    expected = counts(root)
    compact_killed_at(s3_root, step, target_clips=30)
    assert counts(root) == expected  # readers: every row once, whatever the step
    # The killed compaction's lock names a dead process of this host: the next one takes it at once.
    report = compact(s3_root, target_clips=30, grace_s=0)
    assert counts(root) == expected
    assert report.files_after["clips"] == 2 and len(objects(root, "clips")) == 2
    assert len(root.committed().clips) == 60


def test_the_lease_lock_on_s3(s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = DatasetRoot(s3_root)
    with hold(root, "first"):
        held = json.loads(root.read_bytes(".lock"))
        assert held["run_id"] == "first" and held["expires"] > time.time()
        with pytest.raises(RootBusy, match="in use by run first"), hold(DatasetRoot(s3_root), "second"):
            pass
    assert ".lock" not in objects(root, "")  # released

    # A holder on another machine that stopped renewing: refused until its lease expires.
    stale = {"run_id": "gone", "pid": 1, "host": "elsewhere", "since": "-", "token": "x"}
    root.write_file(".lock", json.dumps({**stale, "expires": time.time() + 30}).encode())
    with pytest.raises(RootBusy, match="run gone"), hold(root, "third"):
        pass
    root.write_file(".lock", json.dumps({**stale, "expires": time.time() - 1}).encode())
    with hold(root, "third"):
        assert json.loads(root.read_bytes(".lock"))["run_id"] == "third"

    # Renewed while held; a holder that stalls past its lease and is taken over learns it.
    monkeypatch.setenv("CURATE_LOCK_LEASE_S", "1.5")
    with hold(root, "renewed"):
        first = json.loads(root.read_bytes(".lock"))["expires"]
        time.sleep(2.0)
        assert json.loads(root.read_bytes(".lock"))["expires"] > first
    with pytest.raises(LockLost), pytest.warns(RuntimeWarning, match="lost the lock"), hold(root, "stalled"):
        mine = json.loads(root.read_bytes(".lock"))
        root.write_file(".lock", json.dumps({**mine, "token": "someone else"}).encode())
        time.sleep(1.5)
    assert json.loads(root.read_bytes(".lock"))["token"] == "someone else"  # left to its holder


def test_logs_and_summaries_go_to_the_store(s3_root: str) -> None:
    from curate.pipeline import log_exception, staging_dir

    root = DatasetRoot(s3_root)
    try:
        raise ValueError("a failure with a traceback")
    except ValueError:
        first = log_exception(root, "r1", "probe of a.mp4")
        second = log_exception(root, "r1", "probe of b.mp4")
    assert first != second and str(first).startswith("logs/r1.log.d/")
    assert b"a failure with a traceback" in root.read_bytes(str(first))
    assert not str(staging_dir(root)).startswith(s3_root)  # remote inputs are staged on local disk


def wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what}")
        time.sleep(0.2)


def test_kill_9_of_a_run_on_s3_then_the_same_command_resumes(
    s3_root: str, tmp_path: Path, fixtures: Path, curate, curate_argv
) -> None:
    config = tmp_path / "fast.toml"
    config.write_text(FAST)
    argv = curate_argv(
        "run", str(fixtures / "video"), "--out", s3_root, "--config", str(config), "--executor", "sequential"
    )
    root = DatasetRoot(s3_root)
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(root.committed().done_videos) >= 2, 300, "two finished videos")
        busy = curate(*argv[3:])  # a second run while the first is live
        assert busy.returncode == 3 and "is in use by run" in busy.stderr, busy.stderr
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        driver.kill()
    finished = len(root.committed().done_videos)
    assert 2 <= finished < FIXTURE_VIDEOS
    before = query_counts(curate, s3_root)
    assert before["clips"] == before["uclips"] == before["tracks"] < FIXTURE_CLIPS

    again = curate(*argv[3:])  # the same command: the dead run's lock does not block it
    assert again.returncode == 0, again.stderr
    assert f"already done        {finished} (skipped)" in again.stdout
    summaries = [json.loads(root.read_bytes(f"runs/{n}")) for n in root.storage.files("runs")]
    summary = max(summaries, key=lambda s: s["run_id"])
    assert summary["root"] == s3_root and summary["videos_skipped_done"] == finished
    assert summary["videos_processed"] == FIXTURE_VIDEOS - finished
    after = query_counts(curate, s3_root)
    assert after == {
        "videos": FIXTURE_VIDEOS, "uvideos": FIXTURE_VIDEOS,
        "clips": FIXTURE_CLIPS, "uclips": FIXTURE_CLIPS, "tracks": FIXTURE_CLIPS,
    }  # fmt: skip
    failed = curate("query", s3_root, "select reason, count(*) n from failures group by reason", "-f", "json")
    assert {r["reason"]: r["n"] for r in map(json.loads, failed.stdout.splitlines())} == EXPECTED_FAILURES
    # Every part in the store is named by the log: the killed run's unrecorded ones were swept.
    snap = root.snapshot()
    for table in ("clips", "tracks", "videos"):
        assert objects(root, table) == snap.files(table)
    verdicts = curate("query", s3_root, "select count(*) n from current_decisions", "-f", "json")
    assert json.loads(verdicts.stdout)["n"] == FIXTURE_CLIPS  # the filters judged every clip
    assert ".lock" not in objects(root, "")


def query_counts(curate, uri: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    sql = (
        "select (select count(*) from videos) videos, (select count(distinct video_id) from videos) uvideos,"
        " (select count(*) from clips) clips, (select count(distinct clip_id) from clips) uclips,"
        " (select count(*) from tracks) tracks"
    )
    done = curate("query", uri, sql, "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_commands_that_need_a_local_root_say_so(s3_root: str, curate) -> None:
    for args in (["report", s3_root], ["export", s3_root, "--name", "x"], ["review", "pull", s3_root]):
        done = curate(*args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "is an object-store root" in lines[0] and s3_root in lines[0], done.stderr


def test_a_fresh_process_sees_the_environment(s3_root: str) -> None:
    """Credentials and endpoint come from the environment alone (what Ray workers inherit)."""
    fill(DatasetRoot(s3_root), videos=1, clips_per_video=2, batch=2)
    code = f"from manifests.store import DatasetRoot; print(len(DatasetRoot({s3_root!r}).committed().clips))"
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy()
    )
    assert child.stdout.strip() == "2", child.stderr
