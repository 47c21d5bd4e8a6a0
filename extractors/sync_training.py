"""Learning the sync model from a dataset root, and measuring it on negatives made from real clips.

Training clips: clips with no recorded failure that have blendshapes and audio (with
``accepted_only``, only clips whose current verdict is accept). Clips are grouped by video, and
near-duplicate videos (:mod:`filters.duplicates`) share a group, so leaving a group out leaves
out every copy of its utterance.

Evaluation (``curate sync eval``), each clip scored by a model fit on the other groups only:

- in sync: the clip as it is; its offset should be within one frame of zero;
- shifted: the clip's audio read ``k`` frames earlier or later from the source (as
  ``ffmpeg -itsoffset`` would make it); its offset should move by ``k`` (within one frame);
- swapped: the audio of a clip of another group; its confidence should be lower than in-sync
  clips' (ROC-AUC of the confidence, in sync against swapped).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extractors.registry import dataset_schemas
from extractors.sync import SyncModel, fit, score
from filters.duplicates import find_twins
from ingest.media import SPEECH_SR_HZ, read_audio
from ingest.sources import localize
from manifests.store import DatasetRoot
from manifests.views import connect

SHIFTS = (2, 3, 5, 8, 12)


@dataclass
class SyncClip:
    clip_id: str
    name: str  # file name of the source video
    group: str
    path: Path
    start_s: float
    end_s: float
    fps: float
    blendshapes: list[Any]

    def audio(self, delay_frames: int = 0) -> np.ndarray:
        """16 kHz audio of the clip with the source audio delayed by ``delay_frames`` (silence
        where the delayed span starts before the file)."""
        shift = delay_frames / self.fps
        start, end = self.start_s - shift, self.end_s - shift
        audio = read_audio(self.path, max(start, 0.0), end)
        lead = round(max(-start, 0.0) * SPEECH_SR_HZ)
        return np.concatenate([np.zeros(lead, np.float32), audio]) if lead else audio


class NotEnoughClips(ValueError):
    """The root has too few usable clips (or groups) to train or evaluate."""


def load_clips(root_path: str | Path, staging: Path, accepted_only: bool = False) -> list[SyncClip]:
    """The root's clips usable for sync, with their groups; media localised into ``staging``."""
    root = DatasetRoot(root_path)
    con = connect(root, dataset_schemas())
    accepted = (
        "and clip_id in (select clip_id from current_decisions where verdict = 'accept')"
        if accepted_only
        else ""
    )
    rows = (
        con.sql(
            f"""select c.clip_id, c.video_id, v.uri, c.start_s, c.end_s, c.fps, t.blendshapes,
                   t.audio_fingerprint, t.audio_embedding, v.audio_sr_hz
            from clips c join videos v using (video_id) join tracks t using (clip_id)
            where cardinality(c.errors) = 0 and v.has_audio and t.blendshapes is not null {accepted}
            order by c.clip_id"""
        )
        .to_arrow_table()
        .to_pylist()
    )
    prints = {r["clip_id"]: np.asarray(r["audio_fingerprint"] or [], np.uint32) for r in rows}
    embeddings = {
        r["clip_id"]: np.asarray(r["audio_embedding"], np.float32) for r in rows if r["audio_embedding"]
    }
    twins = find_twins(prints, embeddings, rank=lambda _: (0,))
    video_of = {r["clip_id"]: r["video_id"] for r in rows}
    paths: dict[str, Path] = {}
    clips = []
    for r in rows:
        twin = twins.get(r["clip_id"])
        if r["uri"] not in paths:
            paths[r["uri"]] = localize(r["uri"], staging)
        clips.append(
            SyncClip(
                r["clip_id"],
                Path(r["uri"]).name,
                video_of[twin[0]] if twin else r["video_id"],
                paths[r["uri"]],
                r["start_s"],
                r["end_s"],
                r["fps"],
                r["blendshapes"],
            )
        )
    return clips


def _fps(clips: Sequence[SyncClip]) -> float:
    rates = {c.fps for c in clips}
    if len(rates) != 1:
        raise NotEnoughClips(f"clips have several frame rates {sorted(rates)}: train on one rate")
    return rates.pop()


def train(root_path: str | Path, accepted_only: bool = False, **params: Any) -> SyncModel:
    """Fit the sync model on every usable clip of the root (``params``: ``n_mels``, ``context``, ``ridge``)."""
    with tempfile.TemporaryDirectory() as staging:
        clips = load_clips(root_path, Path(staging), accepted_only)
        if not clips:
            raise NotEnoughClips(f"{root_path} has no clip with a face, speech and no recorded failure")
        recipe = {
            "root": str(root_path),
            "accepted_only": accepted_only,
            "seconds": sum(c.end_s - c.start_s for c in clips),
        }
        return fit([(c.audio(), c.blendshapes) for c in clips], _fps(clips), recipe=recipe, **params)


@dataclass
class ClipResult:
    name: str
    group: str
    offset_frames: int | None
    confidence: float | None
    shifts: dict[int, int | None] = field(default_factory=dict)  # delay -> measured offset
    swapped: dict[str, float | None] = field(default_factory=dict)  # other clip -> confidence


@dataclass
class SyncEvaluation:
    clips: list[ClipResult]
    swap_auc: float
    shifts_recovered: tuple[int, int]  # recovered, tried
    in_sync_near_zero: tuple[int, int]  # within one frame of zero, clips
    params: dict[str, Any]

    def to_text(self) -> str:
        r, n = self.shifts_recovered
        z, m = self.in_sync_near_zero
        lines = [
            f"sync evaluation: {len(self.clips)} clips, {len({c.group for c in self.clips})} groups, leave-one-group-out",
            f"  swap ROC-AUC (in sync vs swapped)     {self.swap_auc:.3f}",
            f"  shifts recovered within ±1 frame     {r}/{n} = {r / max(n, 1):.0%}",
            f"  in-sync offsets within ±1 frame      {z}/{m} = {z / max(m, 1):.0%}",
            "  clip                             offset  confidence  swapped (median)",
        ]
        for c in self.clips:
            swapped = [v for v in c.swapped.values() if v is not None]
            conf = "-" if c.confidence is None else f"{c.confidence:.3f}"
            med = f"{np.median(swapped):.3f}" if swapped else "-"
            lines.append(f"  {c.name[:32]:<32} {c.offset_frames!s:>6}  {conf:>10}  {med:>8}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auc(positives: Iterable[float], negatives: Iterable[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(list(positives)), np.asarray(list(negatives))
    if not len(pos) or not len(neg):
        return float("nan")
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def evaluate(
    root_path: str | Path,
    shifts: Sequence[int] = SHIFTS,
    search: int = 15,
    accepted_only: bool = False,
    **params: Any,
) -> SyncEvaluation:
    """Leave-one-group-out evaluation on in-sync, shifted (± each of ``shifts``) and swapped audio."""
    with tempfile.TemporaryDirectory() as staging:
        clips = load_clips(root_path, Path(staging), accepted_only)
        groups = sorted({c.group for c in clips})
        if len(groups) < 3:
            raise NotEnoughClips(
                f"{root_path} has {len(groups)} group(s) of usable clips; evaluation needs 3"
            )
        fps = _fps(clips)
        audio = {c.clip_id: c.audio() for c in clips}
        results = []
        for clip in clips:
            others = [c for c in clips if c.group != clip.group]
            model = fit([(audio[c.clip_id], c.blendshapes) for c in others], fps, **params)
            base = score(model, audio[clip.clip_id], clip.blendshapes, search)
            result = ClipResult(
                clip.name, clip.group, base.offset_frames if base else None, base.confidence if base else None
            )
            for delay in [*shifts, *(-s for s in shifts)]:
                moved = score(model, clip.audio(delay), clip.blendshapes, search)
                result.shifts[delay] = moved.offset_frames if moved else None
            n = len(audio[clip.clip_id])
            for other in others:
                foreign = np.resize(audio[other.clip_id], n)  # repeated when shorter
                swapped = score(model, foreign, clip.blendshapes, search)
                result.swapped[other.name] = swapped.confidence if swapped else None
            results.append(result)
    scored = [r for r in results if r.offset_frames is not None]
    recovered = [
        abs(moved - r.offset_frames - delay) <= 1
        for r in scored
        for delay, moved in r.shifts.items()
        if moved is not None and r.offset_frames is not None
    ]
    return SyncEvaluation(
        clips=results,
        swap_auc=auc(
            [r.confidence for r in scored if r.confidence is not None],
            [v for r in scored for v in r.swapped.values() if v is not None],
        ),
        shifts_recovered=(sum(recovered), len(scored) * 2 * len(shifts)),
        in_sync_near_zero=(sum(abs(r.offset_frames or 0) <= 1 for r in scored), len(results)),
        params={"shifts": list(shifts), "search": search, "accepted_only": accepted_only, **params},
    )
