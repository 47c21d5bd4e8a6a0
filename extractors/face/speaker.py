"""Which face track is the clip's subject: the one whose mouth the audio explains.

When two lasting tracks (at least ``[face] min_score_frames`` frames each) are on screen at the
same time, each is scored against the clip's audio with the sync model (its calibrated
z-score, :func:`extractors.sync.extractor.score`); the subject is the best when its z-score
reaches ``[face] speaker_min_z`` and beats every other track's by ``[face] speaker_margin_z``.
Otherwise nobody can be chosen ("undecided", and the rule ``multiple_faces`` judges the clip on
how often a second face shows, as it did before tracks).

Where lasting tracks never share a frame (one face at a time: one person, or one after another)
or no track lasts, the subject in each frame is that frame's largest face, as before tracks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A track's per-frame values: (blendshapes (52,), head pose (6,), box (4,)) or ``None`` where
#: the track has no face.
FaceValues = tuple[list[float], list[float], list[float]]
TrackFrames = Sequence[FaceValues | None]

#: Scores one track's per-frame blendshapes (null where no face) against the clip's audio: the
#: sync z-score, or ``None`` when it cannot be scored (too few frames).
MouthScorer = Callable[[Sequence[Sequence[float] | None]], float | None]


@dataclass(frozen=True)
class Subject:
    """The clip's subject: per frame, the face the clip's labels are read from."""

    frames: list[FaceValues | None]  # the subject's values per frame, shape (n_frames,)
    track_ids: list[int | None]  # the track each of those frames comes from
    track: int | None  # the subject's track (the largest one's when chosen frame by frame)
    by: str  # "one face", "largest face" (frame by frame), "sync" or "undecided"
    note: str  # what decided it, e.g. "sync z 5.2, next 0.8 (track 1)"
    chosen: bool  # True unless faces shared frames and none could be chosen


def lasting(tracks: Mapping[int, TrackFrames], min_frames: int) -> list[int]:
    """Ids of the tracks with a face in at least ``min_frames`` frames, longest first."""
    counts = {t: sum(v is not None for v in frames) for t, frames in tracks.items()}
    return sorted((t for t, c in counts.items() if c >= min_frames), key=lambda t: (-counts[t], t))


def _overlap(tracks: Mapping[int, TrackFrames], ids: Sequence[int]) -> bool:
    """Whether two of ``ids`` have a face in the same frame."""
    n = len(next(iter(tracks.values()))) if tracks else 0
    return any(sum(tracks[t][i] is not None for t in ids) >= 2 for i in range(n))


def largest_per_frame(tracks: Mapping[int, TrackFrames], n_frames: int) -> tuple[list[Any], list[int | None]]:
    """Per frame, the largest face of any track and its track id (``None`` where no face)."""
    frames: list[FaceValues | None] = []
    ids: list[int | None] = []
    for i in range(n_frames):
        present = [(t, v[i]) for t, v in tracks.items() if v[i] is not None]
        if not present:
            frames.append(None)
            ids.append(None)
            continue
        t, values = max(present, key=lambda p: _area(p[1]))
        frames.append(values)
        ids.append(t)
    return frames, ids


def _area(values: FaceValues | None) -> float:
    assert values is not None
    box = values[2]
    return (box[2] - box[0]) * (box[3] - box[1])


def choose_subject(
    tracks: Mapping[int, TrackFrames],
    n_frames: int,
    min_frames: int,
    scorer: MouthScorer | None,
    min_z: float,
    margin_z: float,
) -> Subject:
    """The subject of a clip whose faces were followed as ``tracks`` (id -> per-frame values, each
    ``n_frames`` long); ``scorer``: the mouth's sync z-score against the clip's audio, ``None``
    when the clip has no audio or active-speaker choice is off."""
    candidates = lasting(tracks, min_frames)
    if len(candidates) < 2 or not _overlap(tracks, candidates):
        frames, ids = largest_per_frame(tracks, n_frames)
        main = candidates[0] if candidates else _most_frames(ids)
        by = "one face" if len(tracks) <= 1 else "largest face"
        return Subject(frames, ids, main, by, f"{len(tracks)} track(s), {len(candidates)} lasting", True)
    scores = (
        {t: scorer([v[0] if v is not None else None for v in tracks[t]]) for t in candidates}
        if scorer
        else {}
    )
    ranked = sorted(((z, t) for t, z in scores.items() if z is not None), reverse=True)
    if ranked:
        best_z, best = ranked[0]
        next_z = ranked[1][0] if len(ranked) > 1 else float("-inf")
        note = f"sync z {best_z:.1f} (track {best}), next {next_z:.1f}"
        if best_z >= min_z and best_z - next_z >= margin_z:
            subject = list(tracks[best])
            return Subject(
                subject, [best if v is not None else None for v in subject], best, "sync", note, True
            )
        why = "no track in sync" if best_z < min_z else "two tracks alike in sync"
    else:
        note, why = "no audio to compare mouths with", "no audio"
    frames, ids = largest_per_frame(tracks, n_frames)
    return Subject(frames, ids, candidates[0], "undecided", f"{why}: {note}", False)


def _most_frames(ids: Sequence[int | None]) -> int | None:
    seen = [t for t in ids if t is not None]
    return max(set(seen), key=seen.count) if seen else None
