"""Face identity: BCubed, the incremental clustering on small arrays, and the real descriptor on
fixture speakers (fixtures README: vr_face_3 and sadtalker_WDA_AOC_000 are one speaker; vr_face_5,
r3p_May_5s and lp_driving_d20 are three others)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from extractors.identity.clustering import (
    THRESHOLD,
    VoiceVeto,
    agglomerate,
    assign,
    bcubed,
    group_distances,
    identity_id,
    pairwise_distances,
)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def people(seed: int = 0, per_person: int = 4, spread: float = 0.05) -> tuple[np.ndarray, list[str]]:
    """Three people as far apart as orthogonal directions, each a few noisy unit vectors."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:3]
    x = np.vstack([c + spread * rng.standard_normal((per_person, 16)) for c in centres])
    return unit_rows(x), [p for p in "abc" for _ in range(per_person)]


def test_bcubed_by_hand() -> None:
    # Cluster A holds two x; cluster B one x and the y.
    p, r = bcubed(["A", "A", "B", "B"], ["x", "x", "x", "y"])
    assert p == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
    assert r == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    assert bcubed(["1", "2", "3"], ["x", "x", "y"]) == pytest.approx((1.0, (0.5 + 0.5 + 1) / 3))
    assert bcubed(["k"] * 3, ["x", "y", "z"]) == pytest.approx((1 / 3, 1.0))
    assert bcubed(["q", "q", "w"], ["x", "x", "y"]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bcubed(["a"], ["x", "y"])
    with pytest.raises(ValueError):
        bcubed([], [])


def test_group_distance_is_the_rms_of_member_distances() -> None:
    rng = np.random.default_rng(1)
    a, b = unit_rows(rng.standard_normal((3, 8))), unit_rows(rng.standard_normal((5, 8)))
    rms = np.sqrt((pairwise_distances(a, b) ** 2).mean())
    assert group_distances(a.mean(axis=0)[None], b.mean(axis=0)[None])[0, 0] == pytest.approx(rms)
    assert pairwise_distances(a[:1], 3 * a[:1])[0, 0] == pytest.approx(0.0, abs=1e-6)  # rows made unit
    assert pairwise_distances(a[:1], -a[:1])[0, 0] == pytest.approx(2.0)


def test_agglomerate_does_not_chain() -> None:
    """p0-p1 and p1-p2 are closer than the threshold, p0-p2 is not: average linkage keeps p2
    apart once p0 and p1 merged (single linkage would chain all three)."""
    angles = np.radians([0.0, 16.0, 34.0])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    d = pairwise_distances(x, x)
    threshold = 0.32
    assert d[0, 1] < threshold and d[1, 2] < threshold and d[0, 2] > threshold
    labels = agglomerate(x, threshold)
    assert labels[0] == labels[1] != labels[2]
    assert list(agglomerate(x, 1.0)) == [0, 0, 0]
    assert list(agglomerate(x, 0.1)) == [0, 1, 2]


def test_assign_from_nothing_names_identities_after_their_smallest_key() -> None:
    x, truth = people()
    keys = [f"clip-{i:02d}" for i in range(len(x))]
    done = assign([], np.zeros((0, 16)), [], keys, x, 0.5)
    assert bcubed(done.ids, truth) == (1.0, 1.0)
    assert done.new_ids == [identity_id("clip-00"), identity_id("clip-04"), identity_id("clip-08")]
    assert identity_id("clip-00") == "id-" + hashlib.sha1(b"clip-00").hexdigest()[:12]
    assert done.identity_ids == done.new_ids
    assert list(done.counts) == [4, 4, 4]
    np.testing.assert_allclose(done.centroids[1], x[4:8].mean(axis=0))
    # Another order of the same batch: the same id for every key.
    order = np.random.default_rng(2).permutation(len(x))
    again = assign([], np.zeros((0, 16)), [], [keys[i] for i in order], x[order], 0.5)
    assert dict(zip([keys[i] for i in order], again.ids, strict=True)) == dict(
        zip(keys, done.ids, strict=True)
    )
    # Too tight a threshold: every track its own identity.
    assert len(set(assign([], np.zeros((0, 16)), [], keys, x, 0.01).ids)) == len(keys)


def test_assign_onto_existing_identities() -> None:
    x, _ = people(per_person=6)
    first = assign([], np.zeros((0, 16)), [], ["a0", "a1", "b0", "b1"], x[[0, 1, 6, 7]], 0.5)
    counts_before = first.counts.copy()
    a_id, b_id = first.ids[0], first.ids[2]
    stranger = unit_rows(np.eye(16)[5:6] + 0.01)
    keys = ["a2", "c0", "b2", "zz-new", "a3"]
    batch = np.vstack([x[2], x[12], x[8], stranger[0], x[3]])
    done = assign(first.identity_ids, first.centroids, first.counts, keys, batch, 0.5)
    assert done.ids == [a_id, identity_id("c0"), b_id, identity_id("zz-new"), a_id]
    assert done.identity_ids == [a_id, b_id, identity_id("c0"), identity_id("zz-new")]
    assert done.new_ids == [identity_id("c0"), identity_id("zz-new")]
    assert list(done.counts) == [4, 3, 1, 1]
    np.testing.assert_allclose(done.centroids[0], x[[0, 1, 2, 3]].mean(axis=0))
    np.testing.assert_array_equal(first.counts, counts_before)  # the caller's arrays are not changed
    # Nothing new: the identities as they were.
    same = assign(first.identity_ids, first.centroids, first.counts, [], np.zeros((0, 16)), 0.5)
    assert same.identity_ids == first.identity_ids and same.ids == [] and same.new_ids == []


def faces_at(distance: float) -> np.ndarray:
    """Two unit face descriptors ``distance`` apart, shape (2, 16)."""
    angle = 2 * np.arcsin(distance / 2)
    return np.array([np.eye(16)[0], np.cos(angle) * np.eye(16)[0] + np.sin(angle) * np.eye(16)[1]])


def test_voices_keep_apart_only_faces_that_are_ambiguous() -> None:
    veto = VoiceVeto(apart_from=0.27, min_match=0.8)
    same_voice = np.vstack([np.eye(4)[0], np.eye(4)[0] + 0.1 * np.eye(4)[1]])  # cosine 0.995
    other_voice = np.vstack([np.eye(4)[0], np.eye(4)[1] + np.eye(4)[0]])  # cosine 0.71
    no_voice = np.vstack([np.eye(4)[0], np.zeros(4)])
    keys = ["k0", "k1"]
    ambiguous, clear = faces_at(0.30), faces_at(0.20)  # both under the threshold 0.33

    def filed(faces: np.ndarray, voices: np.ndarray) -> list[str]:
        return assign([], np.zeros((0, 16)), [], keys, faces, 0.33, veto, voices).ids

    assert len(set(filed(ambiguous, other_voice))) == 2  # two people: their voices say so
    assert len(set(filed(ambiguous, same_voice))) == 1
    assert len(set(filed(ambiguous, no_voice))) == 1  # one has no voice: the face decides
    assert len(set(filed(clear, other_voice))) == 1  # the face is clear: dubbing does not part it
    assert len(set(assign([], np.zeros((0, 16)), [], keys, ambiguous, 0.33).ids)) == 1  # no veto
    # Onto an identity: its members' voice sum keeps an ambiguous face with another voice out.
    first = assign([], np.zeros((0, 16)), [], ["k0"], ambiguous[:1], 0.33, veto, other_voice[:1])
    sums = other_voice[:1] * 3
    out = assign(first.identity_ids, first.centroids, first.counts, ["k1"], ambiguous[1:], 0.33, veto,
                 other_voice[1:], sums)  # fmt: skip
    assert out.new_ids == ["id-" + hashlib.sha1(b"k1").hexdigest()[:12]]
    joined = assign(first.identity_ids, first.centroids, first.counts, ["k1"], ambiguous[1:], 0.33, veto,
                    same_voice[1:], sums)  # fmt: skip
    assert joined.ids == first.ids and not joined.new_ids


def test_assign_refuses_bad_input() -> None:
    x, _ = people()
    first = assign([], np.zeros((0, 16)), [], ["k0"], x[:1], 0.5)
    with pytest.raises(ValueError, match="repeat"):
        assign([], np.zeros((0, 16)), [], ["k", "k"], x[:2], 0.5)
    with pytest.raises(ValueError, match="already founded"):  # far from every identity, founding again
        assign(first.identity_ids, first.centroids, first.counts, ["k0"], x[8:9], 0.5)
    with pytest.raises(ValueError):
        assign([], np.zeros((0, 16)), [], ["k0", "k1"], x[:1], 0.5)
    with pytest.raises(ValueError):
        assign(first.identity_ids, first.centroids, first.counts, ["k1"], x[:1, :8], 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        assign([], np.zeros((0, 16)), [], ["k1"], np.full((1, 16), np.nan), 0.5)


# --- the real model on real frames --------------------------------------------------------------


@pytest.fixture(scope="module")
def track_embedding(fixtures: Path):  # type: ignore[no-untyped-def]
    """``track_embedding("name.mp4")``: the descriptor of a fixture video's face track (8 evenly
    spaced frames, MediaPipe boxes, square crops), as bench/identity.py makes it."""
    pytest.importorskip("dlib", reason="dlib (the dlib-bin wheel) is not installed")
    from bench.identity import FaceFinder, sample_crops
    from extractors.identity.embedding import FaceEmbedder
    from extractors.identity.model import FACE_EMBEDDING
    from settings.models import ModelUnavailable, cache_dir, resolve

    try:
        folder = resolve(FACE_EMBEDDING, {}, cache_dir(None))
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    embedder = FaceEmbedder(folder)
    finder = FaceFinder()
    made: dict[str, np.ndarray] = {}

    def embedding(name: str) -> np.ndarray:
        if name not in made:
            crops = sample_crops(fixtures / "video" / name, finder, 8)
            assert len(crops) >= 6, f"MediaPipe found a face in {len(crops)} of 8 frames of {name}"
            vector = embedder.embed(crops)
            assert vector is not None
            made[name] = vector
        return made[name]

    yield embedding
    finder.close()


@pytest.mark.slow
def test_descriptor_is_unit_128d_and_none_without_a_usable_face(track_embedding) -> None:  # type: ignore[no-untyped-def]
    from extractors.identity.embedding import FaceEmbedder
    from extractors.identity.model import FACE_EMBEDDING
    from settings.models import cache_dir, resolve

    v = track_embedding("vr_face_3.mp4")
    assert v.shape == (128,) and np.linalg.norm(v) == pytest.approx(1.0)
    embedder = FaceEmbedder(resolve(FACE_EMBEDDING, {}, cache_dir(None)))
    assert embedder.embed([]) is None
    assert embedder.embed([np.zeros((30, 30, 3), np.uint8)]) is None  # face under MIN_FACE_PX
    assert embedder.embed([np.zeros((64, 40, 3), np.uint8)]) is None  # not square


@pytest.mark.slow
def test_same_speaker_in_two_clips_is_nearer_than_the_threshold(track_embedding) -> None:  # type: ignore[no-untyped-def]
    a, b = track_embedding("vr_face_3.mp4"), track_embedding("sadtalker_WDA_AOC_000.mp4")
    assert pairwise_distances(a[None], b[None])[0, 0] < THRESHOLD


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("vr_face_3.mp4", "vr_face_5.mp4"),
        ("vr_face_3.mp4", "r3p_May_5s.mp4"),
        ("r3p_May_5s.mp4", "vr_face_5.mp4"),
        ("lp_driving_d20.mp4", "vr_face_3.mp4"),
    ],
)
@pytest.mark.slow
def test_different_speakers_are_farther_than_the_threshold(track_embedding, one: str, other: str) -> None:  # type: ignore[no-untyped-def]
    distance = pairwise_distances(track_embedding(one)[None], track_embedding(other)[None])[0, 0]
    assert distance > THRESHOLD


@pytest.mark.slow
def test_fixture_speakers_file_into_their_people(track_embedding) -> None:  # type: ignore[no-untyped-def]
    names = [
        "vr_face_3.mp4",
        "sadtalker_WDA_AOC_000.mp4",
        "vr_face_5.mp4",
        "r3p_May_5s.mp4",
        "lp_driving_d20.mp4",
    ]
    x = np.array([track_embedding(n) for n in names])
    done = assign([], np.zeros((0, 128)), [], names, x, THRESHOLD)
    assert bcubed(done.ids, ["aoc", "aoc", "woman5", "may", "d20"]) == (1.0, 1.0)
