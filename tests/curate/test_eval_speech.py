"""`curate emotion eval-speech`: the voice cue alone on labelled audio in the pool's labels.csv
format, per corpus, through the entry point; calm is neutral, boredom is left out and counted,
URDU is scored over its four classes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest


def _subset(pool: Path, out: Path) -> Path:
    """Up to two files per label of one speaker of RAVDESS and of EmoDB, and of URDU's speakers."""
    with open(pool.parent / "speech_emotion" / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen, seen = [], {}
    for row in rows:
        if row["speaker"] not in ("RAVDESS_01", "EmoDB_03") and row["dataset"] != "URDU":
            continue
        key = (row["dataset"], row["label"])
        if seen.get(key, 0) < 2:
            seen[key] = seen.get(key, 0) + 1
            chosen.append(row)
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "dataset", "speaker", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return out


@pytest.mark.slow  # whisper-base and the speech-emotion model over 37 real utterances
def test_scores_each_corpus_over_its_classes(pool, curate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    labels = _subset(pool, tmp_path / "labels.csv")
    figures_path = tmp_path / "figures.json"
    done = curate(
        "emotion", "eval-speech", str(pool.parent / "speech_emotion"), "--labels", str(labels),
        "--json", str(figures_path), "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(figures_path.read_text())
    assert figures["_left_out"] == {"EmoDB/boredom": 2}
    ravdess, emodb, urdu = figures["RAVDESS"], figures["EmoDB"], figures["URDU"]
    with open(labels, newline="") as fh:
        kept = [r["dataset"] for r in csv.DictReader(fh) if r["label"] != "boredom"]
    assert (ravdess["n"], emodb["n"], urdu["n"]) == (16, kept.count("EmoDB"), 8) and kept.count("EmoDB") >= 11
    assert ravdess["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert urdu["classes"] == ["angry", "happy", "sad", "neutral"]
    for name in ("RAVDESS", "EmoDB", "URDU"):
        f = figures[name]
        assert sum(map(sum, f["confusion"])) == f["n"]
        assert f["top1"] == pytest.approx(
            sum(f["confusion"][i][i] for i in range(len(f["classes"]))) / f["n"]
        )
        assert 0 <= f["coverage"] <= 1 and set(f) >= {"n", "top1", "uar", "coverage", "precision"}
    # The shipped model heard these speakers in training: most of their files are read right.
    assert ravdess["top1"] >= 0.6 and emodb["top1"] >= 0.6, done.stdout
    assert "URDU: 8 files over 4 classes" in done.stdout and "EmoDB/boredom 2" in done.stdout


@pytest.mark.slow  # runs the entry point
def test_a_labels_file_without_labels_is_refused(pool, curate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "labels.csv"
    bad.write_text("file,dataset\nRAVDESS/x.flac,RAVDESS\n")
    figures_path = tmp_path / "figures.json"
    done = curate(
        "emotion",
        "eval-speech",
        str(pool.parent / "speech_emotion"),
        "--labels",
        str(bad),
        "--json",
        str(figures_path),
    )
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if str(bad) in line and "label" in line], done.stderr
    assert not figures_path.exists()
    missing = tmp_path / "missing.csv"
    missing.write_text("file,dataset,label\nRAVDESS/nowhere.flac,RAVDESS,angry\n")
    done = curate("emotion", "eval-speech", str(pool.parent / "speech_emotion"), "--labels", str(missing))
    assert done.returncode == 2 and "nowhere.flac" in done.stderr
