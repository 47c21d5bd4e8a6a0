"""Shared test fixtures: the real media in ../shared/fixtures (or $CURATE_FIXTURES), broken files
made from them, and one real `curate run` over all of it, shared by the tests that read its tables.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate.query import query
from curate.run import RunSummary, run
from extractors.registry import make_config
from settings.config import Config, RunConfig, SegmentConfig

REPO = Path(__file__).resolve().parents[1]
#: Fixtures that run real models over media, start servers or clusters, or spawn the CLI: a test
#: that asks for one is in the slow lane (``pytest -m "not slow"`` runs the rest in under a minute).
SLOW_FIXTURES = frozenset(
    {
        "fixture_run",
        "accepted_run",
        "pool_train_subset",
        "curate",
        "curate_argv",
        "label_studio",
        "review_root",
        "pair",
        "damaged",
        "broken_speech",
        "two_node_cluster",
        "fast_config",
    }
)


#: Set to 1 to run without the shared media: the tests that need them are skipped (and say so),
#: instead of the session stopping at its start.
FAST_LANE = "CURATE_FAST_LANE"


def missing_media() -> str | None:
    """Why the shared media are not there (one line naming the variable to set), or ``None``."""
    if not (fixtures_dir() / "video").is_dir():
        return f"no fixture media at {fixtures_dir()}: set CURATE_FIXTURES to a folder with video/ in it"
    if not (pool_dir() / "video").is_dir():
        return f"no pool recordings at {pool_dir() / 'video'}: set CURATE_POOL to a folder with video/ in it"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with one line, when the shared media are missing: a suite that skipped every
    test on real media would end green having tested little. CURATE_FAST_LANE=1 runs it anyway."""
    why = missing_media()
    if why and os.environ.get(FAST_LANE) != "1":
        pytest.exit(f"{why} (or {FAST_LANE}=1 to skip the tests that need them)", returncode=4)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a slow fixture ``slow``."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def fixtures_dir() -> Path:
    return Path(os.environ.get("CURATE_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


def pool_dir() -> Path:
    return Path(os.environ.get("CURATE_POOL", REPO.parent / "shared" / "pool")).resolve()


def curate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "curate.cli", *args]


@pytest.fixture(scope="session")
def curate_argv() -> Callable[..., list[str]]:
    """``curate_argv("run", ...)``: the argv of the command line, for tests that start it themselves."""
    return curate_command


@pytest.fixture(scope="session")
def curate() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``curate("run", ...)``: run the command line as a user does; stdout and stderr captured."""
    return lambda *args: subprocess.run(curate_command(*args), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    path = fixtures_dir()
    if not (path / "video").is_dir():  # only in the fast lane: the session stops otherwise
        pytest.skip(f"no fixture media at {path} ({FAST_LANE}=1)")
    return path


@pytest.fixture(scope="session")
def pool() -> Path:
    """The folder of the pool's recordings (``../shared/pool/video`` or ``$CURATE_POOL/video``)."""
    path = pool_dir() / "video"
    if not path.is_dir():  # only in the fast lane: the session stops otherwise
        pytest.skip(f"no pool recordings at {path} ({FAST_LANE}=1)")
    return path


@pytest.fixture(scope="session")
def video(fixtures: Path):  # type: ignore[no-untyped-def]
    """``video("name.mp4")``: path of a fixture video."""
    return lambda name: fixtures / "video" / name


@dataclass(frozen=True)
class Broken:
    """Bad inputs the tests make from the fixtures."""

    folder: Path
    truncated: Path  # index at the front, data cut at 60%: packets end early
    zero_byte: Path
    fake: Path  # a text file named .mp4
    missing: Path
    twin: Path  # vr_face_3.mp4 under another name


@pytest.fixture(scope="session")
def broken(tmp_path_factory: pytest.TempPathFactory, video) -> Broken:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("broken")
    source = video("lp_driving_d20.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(source[: len(source) * 6 // 10])
    (folder / "zero_byte.mp4").write_bytes(b"")
    (folder / "fake.mp4").write_text("this is not a video\n")
    twin = tmp_path_factory.mktemp("twin") / "same_as_vr_face_3.mp4"
    shutil.copy(video("vr_face_3.mp4"), twin)
    return Broken(
        folder,
        folder / "truncated.mp4",
        folder / "zero_byte.mp4",
        folder / "fake.mp4",
        folder / "missing.mp4",
        twin,
    )


@dataclass(frozen=True)
class FixtureRun:
    root: Path
    summary: RunSummary
    config: Config
    sources: list[str]

    def sql(self, text: str) -> list[dict]:
        return query(self.root, text).to_pylist()


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory: pytest.TempPathFactory, fixtures: Path, broken: Broken) -> FixtureRun:
    """One real run (MediaPipe, faster-whisper base) over every fixture video and the broken inputs.

    Strict: an unexpected extractor error fails the tests instead of becoming a row.
    """
    root = tmp_path_factory.mktemp("dataset")
    config = make_config(run=RunConfig(strict=True))
    sources = [str(fixtures / "video"), str(broken.folder), str(broken.missing), str(broken.twin)]
    with pytest.warns(UserWarning, match=r"1 of \d+ inputs cannot be read .*missing.mp4: no such file"):
        summary = run(sources, root, config, progress=False)  # named before the run starts
    return FixtureRun(root, summary, config, sources)


@pytest.fixture(scope="session")
def accepted_run(fixture_run: FixtureRun, tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    """A copy of the fixture run whose current verdicts are the default filters' (tests append
    other decision sets to the shared root), for tests that read what is accepted: the six
    speaking clips. One rule is off: ``sync_offset``, which by default sends lp_driving_d20 (its
    audio measured 8 frames late) to review; the export tests read its correction."""
    from curate.filter import apply_filters

    root = tmp_path_factory.mktemp("accepted") / "root"
    shutil.copytree(
        fixture_run.root, root, ignore=shutil.ignore_patterns(".lock", "_staging", "exports", "review_media")
    )
    apply_filters(root, make_config(filter={"rules": {"sync_offset": {"enabled": False}}}))
    return FixtureRun(root, fixture_run.summary, fixture_run.config, fixture_run.sources)


#: The fixture videos with a face and speech: what the default filters leave (accepted, or in
#: review when a rule's band holds them), one clip each.
SPEAKING_VIDEOS = frozenset(
    {
        "vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4",
        "geneface_zozo_radnerf.mp4",
    }
)  # fmt: skip


@pytest.fixture(scope="session")
def speaking_videos() -> frozenset[str]:
    """:data:`SPEAKING_VIDEOS`, for tests in other folders."""
    return SPEAKING_VIDEOS


#: Short recordings of eleven of the pool's training speakers (docs/pool/train.csv), 45 s in all.
POOL_TRAIN_SUBSET = (
    "lipnet_bbaf2n.mpg", "lipnet_lwbsza.mpg", "lipnet_sbwe5n.mpg", "deepavsr_00001.mp4",
    "deepavsr_00008.mp4", "deepavsr_00022.mp4", "pcavs_Audio_Source_00086.mp4",
    "pcavs_Pose_Source_00473.mp4", "pcavs_Pose_Source_517600055.mp4",
    "spectre_mead_W015_level_1_neutral_030.mp4", "spectre_mead_M024_level_2_surprised_010.mp4",
)  # fmt: skip


@pytest.fixture(scope="session")
def pool_train_subset(tmp_path_factory: pytest.TempPathFactory, pool: Path) -> Path:
    """A `curate run` over a few short recordings of the pool's training speakers."""
    root = tmp_path_factory.mktemp("pool_train") / "root"
    listing = root.parent / "subset.csv"  # a list file: its speaker_id column becomes source_tags
    listing.write_text(
        "uri,speaker_id\n" + "".join(f"{pool / n},{n.split('.')[0]}\n" for n in POOL_TRAIN_SUBSET)
    )
    config = make_config(
        run=RunConfig(extractors=["face", "fingerprint"], executor="sequential", strict=True),
        segment=SegmentConfig(min_clip_s=1.0),
    )
    run([str(listing)], root, config, progress=False)
    tags = query(root, "select source_tags['speaker_id'] s from videos order by s").to_pylist()
    assert [t["s"] for t in tags] == sorted(n.split(".")[0] for n in POOL_TRAIN_SUBSET)
    return root


@pytest.fixture(scope="session")
def pool_emotion_test_root(tmp_path_factory: pytest.TempPathFactory, pool: Path) -> Path:
    """A `curate run` (face and emotion) over the labelled clips of the pool's test speakers
    (docs/pool/emotion_test.csv), read from this machine's pool folder."""
    root = tmp_path_factory.mktemp("emotion_test") / "root"
    with open(REPO / "docs" / "pool" / "emotion_test.csv", newline="") as fh:
        listed = list(csv.DictReader(fh))
    listing = root.parent / "emotion_test.csv"
    with open(listing, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(listed[0]))
        writer.writeheader()
        for row in listed:
            folder, name = Path(row["uri"]).parts[-2:]
            writer.writerow({**row, "uri": str(pool.parent / folder / name)})
    config = make_config(run=RunConfig(extractors=["face", "emotion"], executor="sequential", strict=True))
    run([str(listing)], root, config, progress=False)
    return root
