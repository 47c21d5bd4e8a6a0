"""Several annotators' verdicts on the same clips, made one: majority vote, Dawid–Skene, and
Krippendorff's alpha for how much the annotators agree.

Inputs are plain triples ``(item, annotator, label)``: an item is a clip id, an annotator their
email, a label one of ``classes`` (the verdict choices: accept, reject). Items with a known label
(gold clips) are held at it while the annotators' quality is estimated, so gold both measures
annotators and sharpens the estimate for every other clip.

Dawid & Skene (1979): each annotator has a confusion matrix ``pi[true, given]``; the EM alternates
the clips' class posteriors (E) with the priors and confusion matrices those posteriors imply
(M). An annotator whose verdicts carry no information (accuracy near chance) gets a near-zero
weight in the posterior, which is how a careless annotator is down-weighted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Annotation = tuple[str, str, str]  # (item, annotator, label)

#: Pseudo-counts of an annotator's overall accuracy (keeps one with few annotations from
#: looking perfect or useless).
SMOOTHING = 1.0
#: Pseudo-annotations pulling each row of a confusion matrix towards the annotator's overall
#: accuracy: with few clips per class, a per-class estimate is mostly noise.
SHRINK = 4.0


@dataclass(frozen=True)
class Aggregate:
    """One item's verdict: the label, its probability (0..1) and the annotations it rests on."""

    label: str
    confidence: float
    annotations: int
    probs: dict[str, float]


@dataclass(frozen=True)
class Aggregation:
    """Every item's verdict and each annotator's estimated accuracy (0..1, over the items they
    labelled, against the aggregate's posterior)."""

    items: dict[str, Aggregate]
    accuracy: dict[str, float]
    method: str


def _counts(annotations: Iterable[Annotation]) -> dict[str, Counter[str]]:
    by_item: dict[str, Counter[str]] = defaultdict(Counter)
    for item, _, label in annotations:
        by_item[item][label] += 1
    return by_item


def majority(
    annotations: Sequence[Annotation], classes: Sequence[str], gold: Mapping[str, str] | None = None
) -> Aggregation:
    """The most frequent label of each item (ties: the first of ``classes``); confidence is its
    share of the item's annotations. Gold items keep their known label."""
    gold = gold or {}
    items = {}
    for item, counts in _counts(annotations).items():
        n = sum(counts.values())
        probs = {c: counts[c] / n for c in classes}
        label = gold.get(item) or max(classes, key=lambda c: (counts[c], -classes.index(c)))
        items[item] = Aggregate(label, 1.0 if item in gold else probs[label], n, probs)
    return Aggregation(items, _accuracy(annotations, items), "majority")


def _accuracy(annotations: Iterable[Annotation], items: Mapping[str, Aggregate]) -> dict[str, float]:
    """Each annotator's expected share of labels that match the items' class probabilities."""
    hits: dict[str, list[float]] = defaultdict(list)
    for item, who, label in annotations:
        hits[who].append(items[item].probs.get(label, 0.0) if item in items else 0.0)
    return {who: float(np.mean(h)) for who, h in hits.items()}


def dawid_skene(
    annotations: Sequence[Annotation],
    classes: Sequence[str],
    gold: Mapping[str, str] | None = None,
    iterations: int = 100,
    tolerance: float = 1e-6,
) -> Aggregation:
    """Dawid–Skene EM over ``annotations`` (started from majority vote), gold items held at
    their label; confidence is the posterior of the chosen label."""
    gold = {i: g for i, g in (gold or {}).items() if g in classes}
    item_ids = sorted({a[0] for a in annotations})
    who_ids = sorted({a[1] for a in annotations})
    if not item_ids:
        return Aggregation({}, {}, "dawid-skene")
    k = len(classes)
    item_at = {i: n for n, i in enumerate(item_ids)}
    who_at = {w: n for n, w in enumerate(who_ids)}
    rows = np.array([item_at[i] for i, _, label in annotations if label in classes])
    cols = np.array([who_at[w] for _, w, label in annotations if label in classes])
    labels = np.array([classes.index(label) for _, _, label in annotations if label in classes])
    held = np.zeros((len(item_ids), k))
    for item, label in gold.items():
        if item in item_at:
            held[item_at[item], classes.index(label)] = 1.0
    is_gold = held.sum(axis=1) > 0

    # start: each item's label shares
    post = np.zeros((len(item_ids), k))
    np.add.at(post, (rows, labels), 1.0)
    post = post / np.maximum(post.sum(axis=1, keepdims=True), 1e-12)
    post[is_gold] = held[is_gold]
    for _ in range(iterations):
        prior = (post.sum(axis=0) + SMOOTHING) / (len(item_ids) + k * SMOOTHING)
        counts = np.zeros((len(who_ids), k, k))  # [annotator, true, given]
        for true in range(k):
            np.add.at(counts[:, true, :], (cols, labels), post[rows, true])
        # each row shrunk towards the annotator's one-coin matrix (one accuracy for every class)
        hits = np.trace(counts, axis1=1, axis2=2)
        accuracy = (hits + SMOOTHING) / (counts.sum(axis=(1, 2)) + 2 * SMOOTHING)
        one_coin = np.empty((len(who_ids), k, k))
        one_coin[:] = ((1 - accuracy) / max(k - 1, 1))[:, None, None]
        one_coin[:, np.arange(k), np.arange(k)] = accuracy[:, None]
        confusion = (counts + SHRINK * one_coin) / (counts.sum(axis=2, keepdims=True) + SHRINK)
        log_post = np.tile(np.log(prior), (len(item_ids), 1))
        np.add.at(log_post, rows, np.log(confusion[cols, :, labels]))
        new = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        new /= new.sum(axis=1, keepdims=True)
        new[is_gold] = held[is_gold]
        done = float(np.abs(new - post).max()) < tolerance
        post = new
        if done:
            break
    n_of = Counter(a[0] for a in annotations)
    items = {}
    for item, p in zip(item_ids, post, strict=True):
        best = int(np.argmax(p))
        items[item] = Aggregate(
            classes[best], float(p[best]), n_of[item], {c: float(v) for c, v in zip(classes, p, strict=True)}
        )
    return Aggregation(items, _accuracy(annotations, items), "dawid-skene")


AGGREGATORS = {"dawid-skene": dawid_skene, "majority": majority}


def disagree(labels: set[str], verdict: Aggregate, agree_confidence: float) -> bool:
    """Whether an item's annotators disagree: two or more annotations whose ``labels`` differ, or
    a verdict less probable than ``agree_confidence`` (such an item wants one more annotator)."""
    return verdict.annotations >= 2 and (len(labels) > 1 or verdict.confidence < agree_confidence)


def krippendorff_alpha(annotations: Iterable[Annotation]) -> float | None:
    """Krippendorff's alpha for nominal labels over the items with at least two labels:
    1 - observed / expected disagreement (1: perfect agreement, 0: chance, < 0: worse than
    chance). ``None`` when fewer than two labels are pairable or every label is the same."""
    by_item = {i: c for i, c in _counts(annotations).items() if sum(c.values()) >= 2}
    values = sorted({v for c in by_item.values() for v in c})
    if not by_item or len(values) < 2:
        return None
    # coincidence matrix o[c, k] = sum over items of n_c n_k (c != k) or n_c (n_c - 1), over m_u - 1
    o = np.zeros((len(values), len(values)))
    for counts in by_item.values():
        n = np.array([counts[v] for v in values], dtype=float)
        o += (np.outer(n, n) - np.diag(n)) / (n.sum() - 1)
    totals = o.sum(axis=1)
    total = totals.sum()
    observed = o.sum() - np.trace(o)
    expected = (total**2 - (totals**2).sum()) / (total - 1)
    return float(1 - observed / expected) if expected > 0 else None
