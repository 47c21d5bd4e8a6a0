"""Aggregation and agreement on simulated annotators (no server): Dawid–Skene against majority
vote, gold held, Krippendorff's alpha against the reference package."""

from __future__ import annotations

import math
import random

import krippendorff
import pytest

from review.aggregate import dawid_skene, krippendorff_alpha, majority

CLASSES = ("accept", "reject")


def simulate(seed: int, rates: dict[str, float], n: int) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    rng = random.Random(seed)
    truth = {f"c{i}": rng.choices(CLASSES, weights=(0.6, 0.4))[0] for i in range(n)}
    annotations = []
    for who, rate in rates.items():
        for clip, label in truth.items():
            wrong = rng.random() < rate
            annotations.append((clip, who, next(c for c in CLASSES if c != label) if wrong else label))
    return truth, annotations


def share_right(truth: dict[str, str], labels: dict[str, str]) -> float:
    return sum(labels[c] == t for c, t in truth.items()) / len(truth)


@pytest.mark.parametrize("n_gold", [0, 15])
def test_dawid_skene_beats_majority_when_annotators_differ_in_quality(n_gold: int) -> None:
    ds_right, mv_right = [], []
    for seed in range(40):
        truth, annotations = simulate(seed, {"a": 0.05, "b": 0.15, "c": 0.4}, 30 + n_gold)
        gold = dict(list(truth.items())[30:])
        ds, mv = dawid_skene(annotations, CLASSES, gold), majority(annotations, CLASSES, gold)
        scored = dict(list(truth.items())[:30])
        ds_right.append(share_right(scored, {c: a.label for c, a in ds.items.items()}))
        mv_right.append(share_right(scored, {c: a.label for c, a in mv.items.items()}))
    # Majority is right ~92%; the Bayes-optimal rule follows annotator a here (its log-odds
    # outweigh b's and c's together): ~95%. Gold sharpens the estimate of who is who.
    assert sum(ds_right) / 40 > sum(mv_right) / 40 + (0.015 if n_gold else 0.005)
    assert sum(ds_right) / 40 > 0.91


def test_gold_is_held_and_annotators_are_estimated_near_their_realized_accuracy() -> None:
    truth, annotations = simulate(3, {"a": 0.05, "b": 0.15, "c": 0.4}, 80)
    gold = dict(list(truth.items())[:20])
    ds = dawid_skene(annotations, CLASSES, gold)
    assert all(ds.items[c].label == v and ds.items[c].confidence == 1.0 for c, v in gold.items())
    for who in "abc":
        mine = [label == truth[clip] for clip, w, label in annotations if w == who]
        assert abs(ds.accuracy[who] - sum(mine) / len(mine)) < 0.08, who


def test_majority_breaks_ties_towards_the_first_class() -> None:
    items = majority([("x", "a", "reject"), ("x", "b", "accept")], CLASSES).items
    assert items["x"].label == "accept" and items["x"].confidence == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_alpha_equals_the_reference_package_with_missing_labels(seed: int) -> None:
    rng = random.Random(seed)
    labels = ("accept", "reject", "unsure")
    matrix = [[rng.choice([*labels, None]) for _ in range(25)] for _ in range(4)]
    annotations = [
        (f"c{j}", f"w{w}", v) for w, row in enumerate(matrix) for j, v in enumerate(row) if v is not None
    ]
    coded = [[math.nan if v is None else labels.index(v) for v in row] for row in matrix]
    reference = krippendorff.alpha(reliability_data=coded, level_of_measurement="nominal")
    assert krippendorff_alpha(annotations) == pytest.approx(reference)


def test_alpha_is_none_without_pairable_or_varied_labels() -> None:
    assert krippendorff_alpha([("x", "a", "accept")]) is None
    assert krippendorff_alpha([("x", "a", "accept"), ("x", "b", "accept")]) is None
