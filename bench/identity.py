"""Face identity (:mod:`extractors.identity`): does one descriptor per face track, clustered
incrementally, put every recording of a person under one id and no two people under one?

    python -m bench.identity [--frames 8] [--json docs/bench/identity.json]

Recordings with a known speaker: the pool's ``video/`` (``docs/pool/train.csv``, ``test.csv``),
its ``emotion/`` clips (``emotion_train.csv``, ``emotion_test.csv``; the contempt clips, in no
CSV, by the speaker in their name), the real videos of ``generated/`` (``generated.csv``,
generated = no) and the fixtures (who is who from their README). Each recording is one track:
``--frames`` evenly spaced frames, the primary face found by MediaPipe Face Landmarker (IMAGE
mode; tiles of the frame when the whole frame shows none), its ``square_crop``, one descriptor.

The threshold is chosen on the training speakers only (train.csv + emotion_train.csv), filing
their tracks all at once and in two halves: among the thresholds whose BCubed precision is at
least ``TARGET_PRECISION`` both ways, the best F1 (mean of the two ways, averaged with the
neighbouring thresholds on the grid so that it does not sit where precision falls off). The test
recordings (test.csv + emotion_test.csv + generated real + fixtures) are then filed once at that
threshold and reported as they come out, with the clusters that hold several ids (the pool's
README names one person under two ids) and the ids spread over several clusters. Stability:
the test set filed in two halves (the second onto the first's identities) against all at once,
halves in key order and in a random order: the share of tracks with the same id, and of pairs
of tracks put together or apart alike; and the same batch in another order. Cost per track:
decoding and finding the faces, and embedding, in ms on this machine.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extractors.base import square_crop
from extractors.identity.clustering import VoiceVeto, assign, bcubed, pairwise_distances
from extractors.identity.embedding import FaceEmbedder
from extractors.identity.extractor import VOICE_MIN_MATCH
from extractors.identity.model import FACE_EMBEDDING
from extractors.identity.voice import VOICE_DIM
from settings.models import cache_dir, resolve

REPO = Path(__file__).resolve().parents[1]
POOL_CSV = REPO / "docs" / "pool"
SHARED = REPO.parent / "shared"
TARGET_PRECISION = 0.98
THRESHOLDS = np.round(np.arange(0.20, 0.801, 0.01), 2)

#: Fixture videos by person (tests/../shared/fixtures/README.md): vr_face_3 and the SadTalker
#: clip are one speaker (AOC). Left out: the cartoon (no face) and the GeneFace clip (generated
#: face of the May speaker), which is reported on its own.
FIXTURE_PEOPLE = {
    "vr_face_3.mp4": "fx_aoc",
    "sadtalker_WDA_AOC_000.mp4": "fx_aoc",
    "vr_face_5.mp4": "fx_vr5_woman",
    "r3p_May_5s.mp4": "fx_may",
    "lp_driving_d20.mp4": "fx_d20_man",
    "vr_face_1.mp4": "fx_vr1_man",
    "lp_driving_d18.mp4": "fx_d18_man",
    "iplap_129.mp4": "fx_iplap_woman",
    "lp_driving_d14.mp4": "fx_d14_woman",
}
GENERATED_OF_MAY = "geneface_zozo_radnerf.mp4"


@dataclass
class Recording:
    key: str  # folder/name under shared/, unique
    path: Path
    speaker: str
    split: str  # train | test | extra
    crops: list[np.ndarray] = field(default_factory=list)
    detect_ms: float = 0.0
    embedding: np.ndarray | None = None
    embed_ms: float = 0.0
    voice: np.ndarray | None = None  # the voice descriptor of its first 30 s of speech


def _rows(name: str) -> list[dict[str, str]]:
    with open(POOL_CSV / name, newline="") as fh:
        return list(csv.DictReader(fh))


def recordings() -> list[Recording]:
    """Every real face recording with a known speaker, once each (a file in two CSVs once)."""
    found: dict[str, Recording] = {}

    def add(path: Path, speaker: str, split: str) -> None:
        path = path.resolve()
        key = f"{path.parent.name}/{path.name}"
        if key not in found:
            found[key] = Recording(key, path, speaker, split)

    for name, split in (
        ("train.csv", "train"),
        ("emotion_train.csv", "train"),
        ("test.csv", "test"),
        ("emotion_test.csv", "test"),
    ):
        for row in _rows(name):
            add(POOL_CSV / row["uri"], row["speaker_id"], split)
    split_of = {r.speaker: r.split for r in found.values()}
    for path in sorted((SHARED / "pool" / "emotion").glob("dreamtalk_*_contempt_*.mp4")):
        match = re.match(r"dreamtalk_([MW]\d{3})_", path.name)
        if match and f"mead_{match[1]}" in split_of:
            add(path, f"mead_{match[1]}", split_of[f"mead_{match[1]}"])
    for row in _rows("generated.csv"):
        if row["generated"].startswith("no"):
            add(POOL_CSV / row["uri"], row["speaker_id"], "test")
    for name, person in FIXTURE_PEOPLE.items():
        add(SHARED / "fixtures" / "video" / name, person, "test")
    add(SHARED / "fixtures" / "video" / GENERATED_OF_MAY, "fx_may", "extra")
    return sorted(found.values(), key=lambda r: r.key)


class FaceFinder:
    """MediaPipe Face Landmarker in IMAGE mode (the registry's ``face-landmarker``): the primary
    (largest) face's box of a frame, normalised x0, y0, x1, y1."""

    def __init__(self) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        from extractors.registry import model_spec

        model = resolve(model_spec("face-landmarker"), {}, cache_dir(None)).read_bytes()
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=model),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=2,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def close(self) -> None:
        self._landmarker.close()

    def _largest(self, pixels: np.ndarray) -> list[float] | None:
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(pixels))
        result = self._landmarker.detect(image)
        boxes = []
        for landmarks in result.face_landmarks:
            xy = np.array([(p.x, p.y) for p in landmarks])
            lo, hi = np.clip(xy.min(axis=0), 0, 1), np.clip(xy.max(axis=0), 0, 1)
            boxes.append([float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])])
        if not boxes:
            return None
        return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))

    def box(self, frame: np.ndarray) -> list[float] | None:
        """The primary face's box in ``frame`` ((H, W, 3) uint8 RGB), or ``None``: the whole
        frame first, then squares of half its shorter side (small faces in wide shots)."""
        found = self._largest(frame)
        if found is not None:
            return found
        h, w = frame.shape[:2]
        side = min(h, w) // 2
        for y in range(0, h - side + 1, side // 2):
            for x in range(0, w - side + 1, side // 2):
                tile = self._largest(frame[y : y + side, x : x + side])
                if tile is not None:
                    return [(x + tile[0] * side) / w, (y + tile[1] * side) / h,
                            (x + tile[2] * side) / w, (y + tile[3] * side) / h]  # fmt: skip
        return None


def sample_crops(path: Path, finder: FaceFinder, frames: int) -> list[np.ndarray]:
    """``square_crop`` of the primary face in ``frames`` evenly spaced frames (those with one)."""
    from ingest.media import iter_frames_at_rate
    from ingest.probe import probe

    duration = float(probe(path).facts["duration_s"] or 0.0)
    crops = []
    # A grid of exactly `frames` times, at the middles of equal parts of the file.
    rate = frames / duration
    for frame in iter_frames_at_rate(path, duration / frames / 2, duration + duration / frames / 2, rate):
        box = finder.box(frame.image)
        if box is not None:
            crops.append(square_crop(frame.image, box)[0])
    return crops


def file_tracks(
    keys: Sequence[str],
    embeddings: np.ndarray,
    threshold: float,
    halves: bool = False,
    veto: VoiceVeto | None = None,
    voices: np.ndarray | None = None,
) -> list[str]:
    """Identity ids of ``keys`` filed from no identity at ``threshold``: all at once, or the
    first half then the second onto the first's identities (``halves``); with a ``veto``, the
    ``voices`` (n, 256; zero rows: none) keep apart what it says."""
    cuts = [0, len(keys) // 2, len(keys)] if halves else [0, len(keys)]
    ids: list[str] = []
    existing: list[str] = []
    centroids = np.zeros((0, embeddings.shape[1]))
    counts = np.zeros(0, dtype=np.int64)
    for lo, hi in itertools.pairwise(cuts):
        known_voices = None
        if veto is not None and voices is not None:
            known_voices = np.array(
                [
                    sum((voices[i] for i, p in enumerate(ids) if p == e), np.zeros(voices.shape[1]))
                    for e in existing
                ]
            ).reshape(len(existing), voices.shape[1])
        done = assign(
            existing, centroids, counts, list(keys[lo:hi]), embeddings[lo:hi], threshold,
            veto, None if voices is None else voices[lo:hi], known_voices,
        )  # fmt: skip
        ids += done.ids
        existing, centroids, counts = done.identity_ids, done.centroids, done.counts
    return ids


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def sweep(keys: list[str], truth: list[str], embeddings: np.ndarray) -> list[dict[str, float]]:
    """BCubed precision and recall at each of ``THRESHOLDS``, filing all at once and in halves."""
    rows = []
    for t in THRESHOLDS:
        p, r = bcubed(file_tracks(keys, embeddings, float(t)), truth)
        hp, hr = bcubed(file_tracks(keys, embeddings, float(t), halves=True), truth)
        rows.append({"threshold": float(t), "precision": round(p, 4), "recall": round(r, 4),
                     "halves_precision": round(hp, 4), "halves_recall": round(hr, 4)})  # fmt: skip
    return rows


def choose(rows: list[dict[str, float]]) -> float:
    """The threshold: precision at least ``TARGET_PRECISION`` filed both ways, and the best F1
    (mean of both ways) averaged with its neighbours on the grid, so that it does not sit on
    the edge where precision falls."""
    score = [
        (f1(r["precision"], r["recall"]) + f1(r["halves_precision"], r["halves_recall"])) / 2 for r in rows
    ]
    smooth = [float(np.mean(score[max(i - 1, 0) : i + 2])) for i in range(len(rows))]
    ok = [i for i, r in enumerate(rows) if min(r["precision"], r["halves_precision"]) >= TARGET_PRECISION]
    best = max(ok or range(len(rows)), key=lambda i: (smooth[i], -rows[i]["threshold"]))
    return rows[best]["threshold"]


def mixed(keys: Sequence[str], truth: Sequence[str], pred: Sequence[str]) -> list[list[str]]:
    """Clusters holding more than one true id: the keys in each, with their ids."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pred):
        groups.setdefault(p, []).append(i)
    return [
        [f"{keys[i]} ({truth[i]})" for i in members]
        for members in groups.values()
        if len({truth[i] for i in members}) > 1
    ]


def split_up(keys: Sequence[str], truth: Sequence[str], pred: Sequence[str]) -> dict[str, list[list[str]]]:
    """True ids spread over more than one cluster: their keys, grouped by the cluster each got."""
    by_truth: dict[str, dict[str, list[str]]] = {}
    for k, t, p in zip(keys, truth, pred, strict=True):
        by_truth.setdefault(t, {}).setdefault(p, []).append(k)
    return {t: list(groups.values()) for t, groups in by_truth.items() if len(groups) > 1}


def extremes(keys: Sequence[str], truth: Sequence[str], embeddings: np.ndarray, n: int = 5) -> dict[str, Any]:
    """The ``n`` closest pairs of different ids and farthest of the same id, with distances."""
    d = pairwise_distances(embeddings, embeddings)
    pairs = [(float(d[a, b]), truth[a] == truth[b], keys[a], keys[b])
             for a in range(len(keys)) for b in range(a + 1, len(keys))]  # fmt: skip
    diff = sorted(p for p in pairs if not p[1])[:n]
    same = sorted((p for p in pairs if p[1]), reverse=True)[:n]
    return {
        "closest_different_ids": [[round(p[0], 3), p[2], p[3]] for p in diff],
        "farthest_same_id": [[round(p[0], 3), p[2], p[3]] for p in same],
    }


def agreement(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of pairs of items that two clusterings both put together or both apart."""
    n = len(a)
    same_a = np.array([[x == y for y in a] for x in a])
    same_b = np.array([[x == y for y in b] for x in b])
    upper = np.triu_indices(n, 1)
    return float((same_a[upper] == same_b[upper]).mean()) if n > 1 else 1.0


def evaluate(items: list[Recording]) -> dict[str, Any]:
    """The figures of the bench over embedded recordings (see the module's doc)."""
    out: dict[str, Any] = {}
    by_split: dict[str, tuple[list[str], list[str], np.ndarray]] = {}
    for split in ("train", "test", "extra"):
        done = [r for r in items if r.split == split and r.embedding is not None]
        by_split[split] = ([r.key for r in done], [r.speaker for r in done],
                           np.array([r.embedding for r in done]).reshape(len(done), -1))  # fmt: skip
        out.setdefault("recordings", {})[split] = {
            "files": sum(r.split == split for r in items),
            "speakers": len({r.speaker for r in items if r.split == split}),
            "embedded": len(done),
            "not_embedded": [r.key for r in items if r.split == split and r.embedding is None],
        }

    voices = {
        split: np.array([r.voice if r.voice is not None else np.zeros(VOICE_DIM) for r in items
                         if r.split == split and r.embedding is not None]).reshape(-1, VOICE_DIM)
        for split in by_split
    }  # fmt: skip
    keys, truth, x = by_split["train"]
    rows = sweep(keys, truth, x)
    threshold = choose(rows)
    at = next(r for r in rows if r["threshold"] == threshold)
    pred = file_tracks(keys, x, threshold)
    out["threshold"] = threshold
    out["train"] = {**{k: v for k, v in at.items() if k != "threshold"},
                    "mixed_clusters": mixed(keys, truth, pred), "split_ids": split_up(keys, truth, pred),
                    **extremes(keys, truth, x)}  # fmt: skip
    out["train_sweep"] = rows

    keys, truth, x = by_split["test"]
    pred = file_tracks(keys, x, threshold)
    halves = file_tracks(keys, x, threshold, halves=True)
    p, r = bcubed(pred, truth)
    hp, hr = bcubed(halves, truth)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(keys))
    shuffled_keys = [keys[i] for i in perm]
    shuffled = dict(zip(shuffled_keys, file_tracks(shuffled_keys, x[perm], threshold), strict=True))
    random_halves = dict(
        zip(shuffled_keys, file_tracks(shuffled_keys, x[perm], threshold, halves=True), strict=True)
    )
    out["test"] = {
        "precision": round(p, 4), "recall": round(r, 4),
        "halves_precision": round(hp, 4), "halves_recall": round(hr, 4),
        "mixed_clusters": mixed(keys, truth, pred), "split_ids": split_up(keys, truth, pred),
        **extremes(keys, truth, x),
    }  # fmt: skip
    # For the record only (the threshold was chosen above, on the training speakers).
    out["test_sweep_not_used_for_choosing"] = [
        {"threshold": float(t), **dict(zip(("precision", "recall"),
                                           (round(v, 4) for v in bcubed(file_tracks(keys, x, float(t)), truth)), strict=True))}
        for t in THRESHOLDS if abs(t - threshold) <= 0.05 + 1e-9
    ]  # fmt: skip
    out["stability"] = {
        "same_ids_when_batch_is_reordered": [shuffled[k] for k in keys] == pred,
        "halves_in_key_order": {"same_id": round(float(np.mean([a == b for a, b in zip(pred, halves, strict=True)])), 4),
                                "same_partition_pairs": round(agreement(pred, halves), 4)},
        "halves_in_random_order": {
            "same_id": round(float(np.mean([pred[i] == random_halves[k] for i, k in enumerate(keys)])), 4),
            "same_partition_pairs": round(agreement(pred, [random_halves[k] for k in keys]), 4)},
    }  # fmt: skip

    # The test tracks filed after the training ones: which join a training speaker's identity.
    tk, tt, tx = by_split["train"]
    filed = assign([], np.zeros((0, tx.shape[1])), [], tk, tx, threshold)
    onto = assign(filed.identity_ids, filed.centroids, filed.counts, keys, x, threshold)
    who = {i: sorted({t for t, p_ in zip(tt, filed.ids, strict=True) if p_ == i}) for i in filed.identity_ids}
    out["test_onto_train"] = {
        "joined_a_train_identity": [f"{k} ({t}) -> {', '.join(who[i])}"
                                    for k, t, i in zip(keys, truth, onto.ids, strict=True) if i in who],
    }  # fmt: skip
    ek, et, ex = by_split["extra"]
    if ek:
        same = [i for i, t in enumerate(truth) if t in set(et)]
        out["generated_face_of_a_test_speaker"] = {
            k: {"speaker": t, "distance_to_that_speaker": [round(float(d), 3) for d in pairwise_distances(ex[j : j + 1], x[same])[0]],
                "filed_with_it": assign(onto.identity_ids, onto.centroids, onto.counts, [k], ex[j : j + 1], threshold).ids[0]
                in {onto.ids[i] for i in same}}
            for j, (k, t) in enumerate(zip(ek, et, strict=True))
        }  # fmt: skip

    out["voice_veto"] = voice_veto(by_split, voices, threshold)

    done = [r for r in items if r.embedding is not None]
    start = time.perf_counter()
    for _ in range(5):
        file_tracks(keys, x, threshold)
    out["cost"] = {
        "decode_and_detect_ms_per_track": {"mean": round(float(np.mean([r.detect_ms for r in done])), 1),
                                           "median": round(float(np.median([r.detect_ms for r in done])), 1)},
        "embed_ms_per_track": {"mean": round(float(np.mean([r.embed_ms for r in done])), 1),
                               "median": round(float(np.median([r.embed_ms for r in done])), 1)},
        "assign_ms_for_test_set": round((time.perf_counter() - start) / 5 * 1e3, 2),
        "machine": f"{os.cpu_count()} cores (shared)",
    }  # fmt: skip
    return out


def voice_veto(
    by_split: dict[str, tuple[list[str], list[str], np.ndarray]],
    voices: dict[str, np.ndarray],
    threshold: float,
) -> dict[str, Any]:
    """Filing with voices keeping faces apart (:class:`VoiceVeto`): from the smallest face
    distance between two different training speakers (to 0.01 below), voices under the voice
    check's threshold (chosen by bench.voice on its training speakers) part them. Train and test
    as they come out, all at once and in halves."""
    keys, truth, x = by_split["train"]
    d = pairwise_distances(x, x)
    different = np.array([[a != b for b in truth] for a in truth])
    veto = VoiceVeto(float(np.floor(d[different].min() * 100) / 100), VOICE_MIN_MATCH)
    out: dict[str, Any] = {"apart_from": veto.apart_from, "min_match": veto.min_match}
    for split in ("train", "test"):
        keys, truth, x = by_split[split]
        v = voices[split]
        pred = file_tracks(keys, x, threshold, veto=veto, voices=v)
        p, r = bcubed(pred, truth)
        hp, hr = bcubed(file_tracks(keys, x, threshold, halves=True, veto=veto, voices=v), truth)
        out[split] = {
            "with_voice": int((np.abs(v).sum(axis=1) > 0).sum()), "tracks": len(keys),
            "precision": round(p, 4), "recall": round(r, 4),
            "halves_precision": round(hp, 4), "halves_recall": round(hr, 4),
            "mixed_clusters": mixed(keys, truth, pred), "split_ids": split_up(keys, truth, pred),
        }  # fmt: skip
    return out


def describe_voices(items: list[Recording]) -> None:
    """Set each recording's voice descriptor (its first 30 s of speech, as the identity signal
    takes it; None under [identity] voice_min_speech_s)."""
    from bench.voice import Voices, speech_of

    voices = Voices()
    for rec in items:
        rec.voice = voices.of(speech_of(rec.path, 60.0))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per recording")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "bench" / "identity.json")
    args = parser.parse_args(argv)

    items = recordings()
    finder = FaceFinder()
    embedder = FaceEmbedder(resolve(FACE_EMBEDDING, {}, cache_dir(None)))
    for n, rec in enumerate(items, 1):
        start = time.perf_counter()
        rec.crops = sample_crops(rec.path, finder, args.frames)
        mid = time.perf_counter()
        rec.embedding = embedder.embed(rec.crops)
        rec.detect_ms, rec.embed_ms = (mid - start) * 1e3, (time.perf_counter() - mid) * 1e3
        print(f"{n:3d}/{len(items)} {rec.key:<62} {len(rec.crops)} faces "
              f"{'-' if rec.embedding is None else 'ok'}", flush=True)  # fmt: skip
    finder.close()
    describe_voices(items)

    results = evaluate(items)
    results["frames_per_track"] = args.frames
    print(json.dumps(results, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
