"""Incremental identity clustering of face-track descriptors, and BCubed scores of a clustering.

Pure numpy. Descriptors are unit vectors (``FaceEmbedder.embed``); the distance between two is
Euclidean (0..2). An identity is kept as the mean of its members' descriptors (its centroid,
shorter than 1 the more its members differ) and their count.

Two groups of tracks are as far apart as the root mean square of the distances between their
members, which for unit vectors needs only the groups' means: ``sqrt(2 - 2 mean_a . mean_b)``.
:func:`assign` files a batch of new tracks with it: the batch is first clustered on its own
(agglomerative, merging while the nearest two clusters are closer than the threshold), then each
cluster joins the identity nearest to it, if nearer than the threshold, or founds a new one.
Since the same measure decides merges within a batch and the match to an identity, filing tracks
in two batches and all at once agree far more often than with centroid distances (which let a
cluster join an identity whose members are, on average, farther than the threshold).

Where faces alone are ambiguous (:class:`VoiceVeto`: a distance under the threshold but at
least where different people's faces begin), voices that do not match keep two tracks, or a
track and an identity, apart: never merged, never joined.

Identities that exist never change their id; a new one is named after its founding key, the
smallest key of its cluster (``id-`` + 12 hex digits of its SHA-1), so that the same tracks filed
the same way get the same ids on every run, whatever their order in the batch.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: Distance under which tracks are one person: chosen on the pool's training speakers (88 tracks,
#: 69 ids) by bench/identity.py (docs/bench/identity.json), BCubed precision 0.99 and recall 1.0
#: there. dlib's descriptor puts East-Asian faces closer together than others: different
#: East-Asian people reach 0.30-0.33, so at this threshold they may share an identity.
THRESHOLD = 0.33


class Assignment(NamedTuple):
    """What :func:`assign` returns.

    ``ids``: the identity of each new key, in the order given. ``identity_ids``, ``centroids``
    ((k, d) float64) and ``counts`` ((k,) int64): every identity after the batch, the existing
    ones first in their order (same ids, centroids and counts updated with their new members),
    then the new ones. ``new_ids``: the identities this batch founded, in that order.
    """

    ids: list[str]
    identity_ids: list[str]
    centroids: np.ndarray
    counts: np.ndarray
    new_ids: list[str]


def identity_id(key: str) -> str:
    """The id of an identity founded by track ``key``: ``id-`` and 12 hex digits of SHA-1."""
    return "id-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def normalised(rows: np.ndarray) -> np.ndarray:
    """Rows of ``rows`` ((n, d)) scaled to unit length; zero rows stay zero."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows, dtype=np.float64), where=norms > 0)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` ((n, d)) and ``b`` ((m, d)), each row made
    unit length first; shape (n, m), in 0..2."""
    return group_distances(normalised(np.asarray(a, np.float64)), normalised(np.asarray(b, np.float64)))


def group_distances(means_a: np.ndarray, means_b: np.ndarray) -> np.ndarray:
    """Distances between groups of unit descriptors given by their means (``means_a`` (n, d),
    ``means_b`` (m, d)): the root mean square of the distances between the members of one
    group and those of the other, ``sqrt(2 - 2 mean_a . mean_b)``; shape (n, m). For groups of
    one it is the distance between the two descriptors."""
    dots = np.asarray(means_a, np.float64) @ np.asarray(means_b, np.float64).T
    return np.sqrt(np.clip(2.0 - 2.0 * dots, 0.0, None))


class VoiceVeto(NamedTuple):
    """When the voices keep two faces apart: their face distance is at least ``apart_from`` (where
    different people's faces begin to come as close as one person's) and both have a voice,
    whose cosine is under ``min_match``."""

    apart_from: float
    min_match: float

    def apart(self, face_distances: np.ndarray, voices_a: np.ndarray, voices_b: np.ndarray) -> np.ndarray:
        """(n, m) bool of the pairs kept apart, given their ``face_distances`` (n, m) and voices
        ``voices_a`` (n, v), ``voices_b`` (m, v) (a zero row: no voice; rows need not be unit)."""
        a, b = normalised(np.asarray(voices_a, np.float64)), normalised(np.asarray(voices_b, np.float64))
        both = (np.abs(a).sum(axis=1) > 0)[:, None] & (np.abs(b).sum(axis=1) > 0)[None, :]
        return (np.asarray(face_distances) >= self.apart_from) & both & (a @ b.T < self.min_match)


def agglomerate(embeddings: np.ndarray, threshold: float, apart: np.ndarray | None = None) -> np.ndarray:
    """Cluster labels ((n,) int, each the lowest row index of its cluster) of agglomerative
    clustering of unit rows: the two clusters nearest by :func:`group_distances` merge while
    that distance is below ``threshold``, never two of which a member of one and a member of the
    other are ``apart`` ((n, n) bool, symmetric; None: none). Ties go to the lower row index, so
    the result depends only on the rows' order. Time O(n^2) per merge at worst, memory O(n^2)."""
    n = len(embeddings)
    labels = np.arange(n)
    if n < 2:
        return labels
    # Mean squared distances between clusters: 2 - 2 x the dot product of their means. A
    # merged cluster's mean is the size-weighted mean of its parts', so its row is the
    # size-weighted mean of theirs (Lance-Williams, average linkage on squared distances); a
    # pair kept apart is infinitely far, and so is any cluster holding one of it from the other.
    d = 2.0 - 2.0 * (embeddings @ embeddings.T)
    if apart is not None:
        d[np.asarray(apart, bool)] = np.inf
    np.fill_diagonal(d, np.inf)
    limit = threshold * threshold
    size = np.ones(n)
    nearest = d.argmin(axis=1)
    nearest_d = d[np.arange(n), nearest]
    while True:
        i = int(nearest_d.argmin())
        if not nearest_d[i] < limit:
            break
        j = int(nearest[i])
        i, j = min(i, j), max(i, j)  # the merged cluster keeps the lower index
        row = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        row[i] = row[j] = np.inf
        d[i, :], d[:, i] = row, row
        d[j, :], d[:, j] = np.inf, np.inf
        size[i] += size[j]
        labels[labels == j] = i
        nearest_d[j] = np.inf
        nearest[i], nearest_d[i] = int(row.argmin()), float(row.min())
        # Rows whose nearest was i or j: look again; others may now be nearest to i.
        stale = np.flatnonzero((nearest == i) | (nearest == j))
        for k in stale[(stale != i) & (stale != j)]:
            nearest[k] = int(d[k].argmin())
            nearest_d[k] = d[k, nearest[k]]
        closer = row < nearest_d
        closer[[i, j]] = False
        nearest[closer], nearest_d[closer] = i, row[closer]
    return labels


def assign(
    existing_ids: Sequence[str],
    existing_centroids: np.ndarray,
    existing_counts: Sequence[int] | np.ndarray,
    new_keys: Sequence[str],
    new_embeddings: np.ndarray,
    threshold: float,
    veto: VoiceVeto | None = None,
    new_voices: np.ndarray | None = None,
    existing_voices: np.ndarray | None = None,
) -> Assignment:
    """File the tracks ``new_keys`` (unique, stable keys such as clip ids) with descriptors
    ``new_embeddings`` ((n, d), unit rows) among the identities ``existing_ids`` (their
    ``existing_centroids`` (k, d) and member ``existing_counts`` (k,)), at distance
    ``threshold`` (Euclidean between unit vectors; see the module's doc for the method).

    With a ``veto``, voices keep apart what the faces alone would join (:class:`VoiceVeto`):
    ``new_voices`` (n, v) and the identities' ``existing_voices`` (k, v; the sum or mean of
    their members' voices), a zero row where there is none; a cluster then joins the nearest
    identity under the threshold that its voice does not keep it from.

    Raises ``ValueError`` for mismatched shapes, repeated keys, or a key that already founded
    one of the existing identities (a track filed twice).
    """
    ids_in = list(existing_ids)
    keys = list(new_keys)
    x = np.asarray(new_embeddings, np.float64)
    centroids = np.array(existing_centroids, np.float64)
    if not ids_in:
        centroids = centroids.reshape(0, x.shape[-1] if x.ndim == 2 else 0)
    counts = np.array(existing_counts, np.int64).reshape(-1)  # a copy: updated below
    if x.ndim != 2 or len(x) != len(keys):
        raise ValueError(f"new_embeddings must be (len(new_keys), d); got {x.shape} for {len(keys)} keys")
    if len(counts) != len(ids_in) or centroids.shape != (len(ids_in), x.shape[1]):
        raise ValueError("existing ids, centroids and counts must agree, in length and dimension")
    if len(set(keys)) != len(keys):
        raise ValueError("new_keys repeat a key")
    if not np.isfinite(x).all():
        raise ValueError("new_embeddings hold a non-finite value")
    if len(keys) == 0:
        return Assignment([], ids_in, centroids.copy(), counts.copy(), [])

    # Cluster in key order: the result does not depend on the order of the batch.
    order = sorted(range(len(keys)), key=keys.__getitem__)
    x_sorted = normalised(x[order])
    voices = np.zeros((len(keys), 1)) if new_voices is None else np.asarray(new_voices, np.float64)[order]
    known_voices = np.zeros((len(ids_in), voices.shape[1])) if existing_voices is None else existing_voices
    apart = None if veto is None else veto.apart(group_distances(x_sorted, x_sorted), voices, voices)
    labels = agglomerate(x_sorted, threshold, apart)
    cluster_rows = {label: np.flatnonzero(labels == label) for label in dict.fromkeys(labels.tolist())}

    out_ids = ids_in.copy()
    sums = centroids * counts[:, None] if len(ids_in) else np.zeros((0, x.shape[1]))
    new_sums: list[np.ndarray] = []
    new_counts: list[int] = []
    new_ids: list[str] = []
    taken = set(ids_in)
    assigned: list[str] = [""] * len(keys)
    known = centroids if len(ids_in) else None
    for rows in cluster_rows.values():  # in order of founding key (rows are sorted by key)
        members = x_sorted[rows]
        mean = members.mean(axis=0)
        target: int | None = None
        if known is not None:
            dist = group_distances(mean[None, :], known)[0]
            barred = (
                np.zeros(len(dist), bool)
                if veto is None
                else veto.apart(dist[None, :], voices[rows].sum(axis=0)[None, :], known_voices)[0]
            )
            near = [k for k in np.argsort(dist, kind="stable") if dist[k] < threshold and not barred[k]]
            target = int(near[0]) if near else None
        if target is not None:
            sums[target] += members.sum(axis=0)
            counts[target] += len(rows)
            name = ids_in[target]
        else:
            name = identity_id(keys[order[rows[0]]])
            if name in taken:
                raise ValueError(f"{keys[order[rows[0]]]!r} already founded identity {name}")
            taken.add(name)
            new_ids.append(name)
            new_sums.append(members.sum(axis=0))
            new_counts.append(len(rows))
        for r in rows:
            assigned[order[r]] = name
    all_sums = np.vstack([sums, *[s[None, :] for s in new_sums]]) if new_sums else sums
    all_counts = np.concatenate([counts, np.asarray(new_counts, np.int64)])
    return Assignment(assigned, out_ids + new_ids, all_sums / all_counts[:, None], all_counts, new_ids)


def bcubed(pred: Sequence[str], truth: Sequence[str]) -> tuple[float, float]:
    """BCubed precision and recall of the clustering ``pred`` against the classes ``truth`` (one
    label each per item): for each item, the share of its cluster that has its class
    (precision) and the share of its class that is in its cluster (recall), averaged over items.
    Raises ``ValueError`` for lengths that differ or no items."""
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} predictions for {len(truth)} items")
    if not pred:
        raise ValueError("no items")
    both = Counter(zip(pred, truth, strict=True))
    cluster = Counter(pred)
    cls = Counter(truth)
    precision = sum(n * n / cluster[p] for (p, _), n in both.items()) / len(pred)
    recall = sum(n * n / cls[t] for (_, t), n in both.items()) / len(pred)
    return precision, recall
