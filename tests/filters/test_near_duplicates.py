"""The near-duplicate index on real fingerprints: the fixture twin, updates of a stored index, recall."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.near_duplicates import Corpus, exact_pairs, index_pairs
from curate.filter import apply_filters
from curate.query import query
from curate.ray_executor import ray_map
from curate.run import run
from extractors.fingerprint.extractor import band_energies, fingerprint
from extractors.registry import make_config
from filters import near_count, near_index
from filters.duplicates import PAIRS_TABLE, find_twins, update
from ingest.media import read_audio
from manifests.store import DatasetRoot
from settings.config import RayConfig, RunConfig

SPEAKING = (
    "vr_face_3.mp4",
    "vr_face_5.mp4",
    "r3p_May_5s.mp4",
    "lp_driving_d20.mp4",
    "vr_face_1.mp4",
    "geneface_zozo_radnerf.mp4",
    "sadtalker_WDA_AOC_000.mp4",  # vr_face_3's recording, another crop and encoding
)
TWIN, KEPT = "sadtalker_WDA_AOC_000.mp4", "vr_face_3.mp4"


@pytest.fixture(scope="module")
def prints(video: Callable[[str], Path]) -> dict[str, np.ndarray]:
    """Real fingerprints of the speaking fixtures, computed as the fingerprint extractor does."""
    return {name: fingerprint(band_energies(read_audio(video(name)))) for name in SPEAKING}


def fetcher(prints: dict[str, np.ndarray]) -> Callable[..., dict[str, np.ndarray]]:
    return lambda ids: {c: prints[c] for c in ids}


def test_the_index_finds_the_fixture_twin_and_nothing_else(prints) -> None:
    candidates = near_index.search([], [], prints)
    assert candidates == [(TWIN, KEPT)]  # found by the index, not by aligning every pair
    twins = find_twins(prints, rank=lambda c: (c == KEPT,))
    assert twins.keys() == {TWIN}
    assert twins[TWIN][0] == KEPT and twins[TWIN][1] < 0.1  # 6.9% of the bits differ


def test_an_update_checks_new_clips_against_the_stored_index(prints, tmp_path: Path) -> None:
    root = DatasetRoot(tmp_path / "root")
    first = [c for c in prints if c != TWIN]
    one = update(root, first, fetcher(prints), "first")
    assert one.indexed == len(first) and one.pairs == []
    rows = root.read_table(near_index.INDEX_TABLE)
    assert rows is not None and near_index.indexed([rows.column("clip").to_numpy()]) == {
        near_index.clip_key(c) for c in first
    }

    asked: list[list[str]] = []

    def fetch(ids):
        asked.append(sorted(ids))
        return {c: prints[c] for c in ids}

    two = update(root, list(prints), fetch, "second")
    assert two.indexed == 1  # only the new clip was indexed...
    assert asked[0] == [TWIN]  # ...and only its fingerprint read to index it
    assert [(a, b) for a, b, _ in two.pairs] == [(TWIN, KEPT)]  # found against the first batch
    assert two.pairs[0][2] < 0.1
    grown = root.read_table(near_index.INDEX_TABLE)
    assert grown is not None and len(grown) == len(rows) + len(
        near_index.entries([TWIN], near_index.hop_keys([prints[TWIN]]))
    )

    three = update(root, list(prints), fetcher(prints), "third")
    assert (three.indexed, three.aligned) == (0, 0) and three.pairs == two.pairs
    assert len(root.read_table(near_index.INDEX_TABLE)) == len(grown)  # type: ignore[arg-type]
    assert len(root.read_table(PAIRS_TABLE)) == 1  # type: ignore[arg-type]


def test_an_update_finds_what_a_full_build_finds(prints, tmp_path: Path) -> None:
    corpus = Corpus([{"fp": p, "name": n} for n, p in prints.items()], seed=3)
    clips, _ = corpus.make(300, twin_share=0.1, near_share=0.0)
    ids = sorted(clips)
    grown, whole = DatasetRoot(tmp_path / "grown"), DatasetRoot(tmp_path / "whole")
    update(grown, ids[:270], fetcher(clips), "a")
    added = update(grown, ids, fetcher(clips), "b")
    full = update(whole, ids, fetcher(clips), "all")
    assert added.indexed == 30 and full.indexed == 300
    assert added.pairs == full.pairs and len(full.pairs) >= 20


def test_recall_on_a_corpus_of_real_fingerprints_equals_exact_search(prints) -> None:
    corpus = Corpus([{"fp": p, "name": n} for n, p in prints.items()], seed=1)
    # 4 s clips: from only 46 s of real audio, longer ones often share whole bit groups by chance,
    # up to twins near the threshold that the index may miss (bench.near_duplicates measures those)
    corpus.lengths = np.array([250])
    clips, planted = corpus.make(100, twin_share=0.15, near_share=0.0)
    exact = exact_pairs(clips)  # every pair aligned with best_match
    assert len(set(exact) & set(planted)) >= 14
    assert index_pairs(clips).keys() == exact.keys()  # the index's candidates, aligned
    found = find_twins(clips, rank=lambda c: (0,))
    grouped = set(found) | {kept for kept, _ in found.values()}
    assert grouped == {c for pair in exact for c in pair}


@pytest.mark.slow  # real models over two videos
def test_a_later_better_copy_replaces_one_accepted_before(
    video: Callable[[str], Path], tmp_path: Path
) -> None:
    """The 16 kHz copy is accepted alone; when the 44.1 kHz copy of the same recording arrives in
    a later run, it is kept and the earlier copy becomes its duplicate, counted as replaced."""
    config = make_config(
        run=RunConfig(extractors=["face", "fingerprint"], executor="sequential", strict=True)
    )
    first = run([str(video(TWIN))], tmp_path / "root", config, progress=False).filter  # a run ends filtering
    assert first is not None and first.verdicts == {"accept": 1} and first.replaced == 0
    second = run([str(video(KEPT))], tmp_path / "root", config, progress=False).filter
    assert second is not None and second.verdicts == {"accept": 1, "reject": 1} and second.replaced == 1
    assert "1 clip(s) accepted before are now duplicates of a better copy" in second.to_text()
    assert apply_filters(tmp_path / "root", config).replaced == 0, "counted once, when it happens"
    rows = query(
        tmp_path / "root",
        "select regexp_extract(v.uri, '[^/]+$') name, d.verdict, d.duplicate_why from current_decisions d"
        " join clips c using (clip_id) join videos v using (video_id) order by name",
    ).to_pylist()
    assert [(r["name"], r["verdict"]) for r in rows] == [(TWIN, "reject"), (KEPT, "accept")]
    assert rows[0]["duplicate_why"].startswith(
        "both judged accept by the other rules; kept the better source"
    )
    assert "44100 Hz" in rows[0]["duplicate_why"] and "this copy: 16000 Hz" in rows[0]["duplicate_why"]


def test_the_count_in_partitions_finds_what_one_partition_finds(prints, tmp_path: Path) -> None:
    """A memory budget that cuts the count into hundreds of partitions and vote shards, run as
    Ray tasks on two workers, gives the same candidates as one partition in this process, and
    leaves nothing in its spill folder."""
    corpus = Corpus([{"fp": p, "name": n} for n, p in prints.items()], seed=5)
    clips, planted = corpus.make(400, twin_share=0.1, near_share=0.0)
    whole = near_index.search([], [], clips, memory_mb=1e6)
    entries = near_index.TABLES * sum(len(p) for p in clips.values())
    small = near_count.Layout.for_entries(near_index.TABLES, near_index.BITS, entries, memory_mb=0.2)
    assert small.ranges >= 16 and small.shards >= 256
    ray = ray_map(RayConfig(workers=2))
    cut = near_index.search([], [], clips, memory_mb=0.2, map_fn=ray, spill=tmp_path)
    assert cut == whole and len(set(whole) & set(planted)) >= 30
    assert list(tmp_path.iterdir()) == []


def test_a_vote_counts_once_per_offset_whatever_the_partition() -> None:
    """Three entries of clip 0 and three of clip 1 share keys at offset +5 in three tables (a
    candidate), and two at other offsets (not one); an old-old pair is never counted."""
    table = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5], np.uint8)
    key = np.array([7, 7, 9, 9, 7, 7, 1, 1, 2, 2, 3, 3], np.uint32)
    clip = np.array([0, 1, 0, 1, 0, 1, 0, 2, 0, 2, 1, 2], np.int32)
    hop = np.array([10, 15, 20, 25, 30, 35, 1, 9, 2, 4, 0, 0], np.uint16)
    new = np.array([False, True, False])
    for ranges in (1, 4):
        layout = near_count.Layout(tables=6, bits=4, ranges=ranges, shards=3)
        found = near_count.candidate_pairs([(table, key, clip, hop)], new, layout)
        assert found.tolist() == [[0, 1]]
