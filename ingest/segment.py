"""Cutting a video into clips that suit training: at shot changes always, at silences to keep
clips short, at a hard maximum length when a stretch has no silence.

:func:`plan_clips` is pure (times in, cuts out); :func:`shot_changes` and :func:`silences`
measure the video and audio it plans from.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from ingest.media import ENVELOPE_HOP_S, Damage, iter_frames_at_rate

SHOT_THUMB = (64, 36)  # (width, height) of the gray thumbnails compared for shot changes


@dataclass(frozen=True)
class SegmentParams:
    """Clip lengths in seconds; silence as a level relative to the track's loud parts."""

    min_clip_s: float = 2.0
    max_clip_s: float = 20.0
    min_silence_s: float = 0.25
    silence_below_db: float = 30.0  # a hop is silent this many dB under the 95th percentile level
    shot_threshold: float = 0.25  # mean absolute thumbnail change (0..1) that counts as a cut
    shot_sample_fps: float = 10.0


@dataclass(frozen=True)
class ClipPlan:
    """One planned clip: [start_s, end_s) in source time, and why it starts and ends there."""

    start_s: float
    end_s: float
    cut_start: str
    cut_end: str


def clip_id(video_id: str, start_s: float, end_s: float) -> str:
    """Deterministic clip id: the video id and the clip's span in milliseconds."""
    return f"{video_id}_{round(start_s * 1000):08d}_{round(end_s * 1000):08d}"


def silences(
    envelope_db: np.ndarray, params: SegmentParams, hop_s: float = ENVELOPE_HOP_S
) -> list[tuple[float, float]]:
    """Silent stretches (start_s, end_s) of at least ``min_silence_s`` in an RMS envelope (dBFS per hop)."""
    if not len(envelope_db):
        return []
    loud = float(np.percentile(envelope_db, 95))
    quiet = envelope_db < loud - params.silence_below_db
    runs: list[tuple[float, float]] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        if (hi - lo) * hop_s >= params.min_silence_s:
            runs.append((lo * hop_s, hi * hop_s))
    return runs


def shot_changes(
    path: Path, duration_s: float, params: SegmentParams, damage: Damage | None = None
) -> list[float]:
    """Times (s) of hard cuts: a gray thumbnail changes by more than ``shot_threshold`` between
    samples (damaged video packets skipped on the way are listed in ``damage``)."""
    times: list[float] = []
    previous: np.ndarray | None = None
    for frame in iter_frames_at_rate(
        path, 0.0, duration_s, params.shot_sample_fps, fmt="gray", size=SHOT_THUMB, damage=damage
    ):
        thumb = frame.image.astype(np.float32) / 255.0
        if previous is not None and float(np.mean(np.abs(thumb - previous))) > params.shot_threshold:
            times.append(frame.t_s)
        previous = thumb
    return times


def _best_cut(lo: float, hi: float, silent: list[tuple[float, float]]) -> float | None:
    """Middle of the longest silence whose middle lies in [lo, hi], if any."""
    best: tuple[float, float] | None = None
    for a, b in silent:
        mid = (a + b) / 2
        if lo <= mid <= hi and (best is None or b - a > best[0]):
            best = (b - a, mid)
    return None if best is None else best[1]


def plan_clips(
    duration_s: float, shots: list[float], silent: list[tuple[float, float]], params: SegmentParams
) -> list[ClipPlan]:
    """Split [0, duration_s) into clips.

    Every shot change is a cut. A shot longer than ``max_clip_s`` is cut at the longest silence
    that leaves both sides at least ``min_clip_s``, or, when there is none, as late as leaves the
    rest at least ``min_clip_s`` (so no cut leaves a short tail). A shot shorter than
    ``min_clip_s`` still becomes a plan, so no stretch of the video goes unaccounted for; the
    segment stage records it as a ``too_short`` failure and nothing is extracted from it.
    """
    bounds = [0.0, *sorted(t for t in shots if 0.0 < t < duration_s), duration_s]
    kinds = ["start", *["shot"] * (len(bounds) - 2), "end"]
    plans: list[ClipPlan] = []
    for (start, end), (kind_start, kind_end) in zip(pairwise(bounds), pairwise(kinds), strict=True):
        cur, cur_kind = start, kind_start
        while end - cur > params.max_clip_s:
            hi = min(cur + params.max_clip_s, end - params.min_clip_s)
            cut = _best_cut(cur + params.min_clip_s, hi, silent)
            kind = "silence" if cut is not None else "max_length"
            cut = cut if cut is not None else hi
            plans.append(ClipPlan(cur, cut, cur_kind, kind))
            cur, cur_kind = cut, kind
        if end - cur > 1e-3:
            plans.append(ClipPlan(cur, end, cur_kind, kind_end))
    return plans
