"""Learning the sync model from a dataset root, and measuring it on negatives made from real clips.

Training clips: clips with no recorded failure that have blendshapes and audio (with
``accepted_only``, only clips whose current verdict is accept). Clips are grouped by video, and
near-duplicate videos (:mod:`filters.duplicates`) share a group, so leaving a group out leaves
out every copy of its utterance.

Evaluation (``curate sync eval``) scores clips with a model that never saw them: either one model
trained on another root (``train_root``: other speakers, the cross-corpus test), or, within one
root, for each group a model fit on the other groups (leave-one-group-out). On:

- in sync: the clip as it is; a reported offset should be within two frames of zero;
- shifted: the clip's audio read ``k`` frames earlier or later from the source (as
  ``ffmpeg -itsoffset`` would make it); its peak should move by ``k`` (within one frame), and
  the sync rules should flag it (review or reject) when ``|k| >= 5``;
- swapped: the audio of a clip of another group; its confidence should be lower than in-sync
  clips' (ROC-AUC), and the sync rules should flag it.

Each clip is also cut into windows (:data:`WINDOWS_S`), each judged in sync, shifted by
:data:`FLAG_SHIFTS` and with foreign audio, so that the rules' verdicts (accept, review, reject)
can be reported by seconds of speech (:data:`BANDS`), and the evidence model (an in-sync z-score
against the square root of its seconds of speech; :func:`fit_evidence`) fitted on clips of every
length.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from extractors.registry import dataset_schemas, make_config
from extractors.sync.extractor import (
    DEFAULT_FEATURES,
    SyncConfig,
    SyncModel,
    SyncScore,
    feature_maker,
    fit,
    in_sync_p,
    score,
    speech_frames,
)
from filters.duplicates import find_twins
from filters.rules import check
from ingest.media import SPEECH_SR_HZ, read_audio
from ingest.sources import localize
from manifests.store import DatasetRoot
from manifests.views import connect
from settings.config import Config
from settings.errors import NothingToWorkOn

SHIFTS = (2, 3, 5, 8, 12)
#: Shifts at least this large (frames) should be flagged by the sync rules.
FLAG_SHIFT = 5
#: Lengths of the windows each clip is cut into (seconds; at most two of each per clip), and the
#: shifts (frames, both ways) and foreign recordings each window is judged with.
WINDOWS_S = (2.5, 4.0)
FLAG_SHIFTS = (5, 8, 12)
WINDOW_FOREIGN = 3
#: How many standard deviations under its mean a normal variable's 1% quantile lies.
NORMAL_Q01 = 2.3263
#: Speech-duration bands of the verdict figures: name, from, to (seconds of speech).
BANDS = (("under 3 s", 0.0, 3.0), ("3-6 s", 3.0, 6.0), ("over 6 s", 6.0, float("inf")))


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
        where the delayed span lies outside the file)."""
        shift = delay_frames / self.fps
        start, end = self.start_s - shift, self.end_s - shift
        n = round((self.end_s - self.start_s) * SPEECH_SR_HZ)
        audio = read_audio(self.path, max(start, 0.0), end)
        lead = round(max(-start, 0.0) * SPEECH_SR_HZ)
        audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead else audio
        return np.pad(audio[:n], (0, max(0, n - len(audio))))


class NotEnoughClips(NothingToWorkOn, ValueError):
    """The root has too few usable clips (or groups) to train or evaluate."""


def load_clips(
    root_path: str | Path, staging: Path, accepted_only: bool = False, tags: Mapping[str, str] | None = None
) -> list[SyncClip]:
    """The root's clips usable for sync, with their groups; media localised into ``staging``.
    ``tags``: only clips of videos with these source tags (e.g. ``{"split": "train"}``)."""
    root = DatasetRoot(root_path)
    con = connect(root, dataset_schemas())
    accepted = (
        "and clip_id in (select clip_id from current_decisions where verdict = 'accept')"
        if accepted_only
        else ""
    )
    tagged = "".join(" and list_contains(map_extract(v.source_tags, ?), ?)" for _ in tags or {})
    rows = (
        con.sql(
            f"""select c.clip_id, c.video_id, v.uri, c.start_s, c.end_s, c.fps, t.blendshapes,
                   t.audio_fingerprint, v.audio_sr_hz
            from clips c join videos v using (video_id) join tracks t using (clip_id)
            where cardinality(c.errors) = 0 and v.has_audio and t.blendshapes is not null {accepted}{tagged}
            order by c.clip_id""",
            params=[value for pair in (tags or {}).items() for value in pair],
        )
        .to_arrow_table()
        .to_pylist()
    )
    prints = {r["clip_id"]: np.asarray(r["audio_fingerprint"] or [], np.uint32) for r in rows}
    twins = find_twins(prints, rank=lambda _: (0,))
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


@dataclass(frozen=True)
class Recipe:
    """How a sync model is fit: its features (:data:`~extractors.sync.extractor.FEATURE_CHOICES`), the ridge
    penalty and the self-training rounds."""

    features: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FEATURES))
    ridge: float = 3000.0
    self_training: int = 1


class Inputs:
    """Feature rows of clips' audio (optionally delayed), and its frames of speech, computed once each."""

    def __init__(self, features: dict[str, Any], config: Config):
        self.features = features
        self._make = feature_maker(features, config.models)
        self._done: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def _both(self, clip: SyncClip, delay_frames: int) -> tuple[np.ndarray, np.ndarray]:
        key = (clip.clip_id, delay_frames)
        if key not in self._done:
            audio, n = clip.audio(delay_frames), len(clip.blendshapes)
            self._done[key] = (self._make(audio, clip.fps, n), speech_frames(audio, clip.fps, n))
        return self._done[key]

    def __call__(self, clip: SyncClip, delay_frames: int = 0) -> np.ndarray:
        return self._both(clip, delay_frames)[0]

    def speech(self, clip: SyncClip, delay_frames: int = 0) -> np.ndarray:
        """Frames of ``clip`` whose (delayed) audio is speech (:func:`extractors.sync.extractor.speech_frames`)."""
        return self._both(clip, delay_frames)[1]


def _fit_on(clips: Sequence[SyncClip], inputs: Inputs, recipe: Recipe, info: dict[str, Any]) -> SyncModel:
    return fit(
        [(inputs(c), c.blendshapes) for c in clips],
        _fps(clips),
        recipe.features,
        ridge=recipe.ridge,
        self_training=recipe.self_training,
        recipe=info,
    )


def _bar(items: Sequence[Any], what: str, progress: bool) -> Iterable[Any]:
    return tqdm(items, desc=what, unit="clip", disable=not progress, leave=False)


def train(
    root_path: str | Path,
    accepted_only: bool = False,
    recipe: Recipe | None = None,
    config: Config | None = None,
    progress: bool = False,
    tags: Mapping[str, str] | None = None,
) -> SyncModel:
    """Fit the sync model on every usable clip of the root (with ``tags``: of videos with these source tags)."""
    config, recipe = config or make_config(), recipe or Recipe()
    with tempfile.TemporaryDirectory() as staging:
        clips = load_clips(root_path, Path(staging), accepted_only, tags)
        if not clips:
            raise NotEnoughClips(f"{root_path} has no clip with a face, speech and no recorded failure")
        inputs = Inputs(recipe.features, config)
        for clip in _bar(clips, "features", progress):
            inputs(clip)
        info = {
            "root": str(root_path),
            "accepted_only": accepted_only,
            "tags": dict(tags or {}),
            "seconds": sum(c.end_s - c.start_s for c in clips),
        }
        return _fit_on(clips, inputs, recipe, info)


@dataclass
class ClipResult:
    name: str
    group: str
    offset_frames: int | None  # reported (significant) offset of the clip as it is
    peak_frames: int | None
    confidence: float | None  # calibrated z
    correlation: float | None
    accepted: bool  # the sync rules accept the clip as it is
    shifts: dict[int, int | None] = field(default_factory=dict)  # delay -> peak
    shift_flagged: dict[int, bool] = field(default_factory=dict)  # delay -> the sync rules flag it
    swapped: dict[str, float | None] = field(default_factory=dict)  # other clip -> confidence
    swapped_raw: dict[str, float | None] = field(default_factory=dict)  # other clip -> correlation
    swap_flagged: dict[str, bool] = field(default_factory=dict)
    judged: list[Judged] = field(default_factory=list)  # the whole clip and its windows, every variant


@dataclass(frozen=True)
class Judged:
    """One span of a clip scored with one audio, and the sync rules' verdict on it."""

    audio: str  # in_sync | shifted | foreign
    speech_s: float  # seconds of compared frames with speech
    confidence: float | None
    offset_frames: int | None  # reported (significant) offset
    verdict: str  # accept | review | reject


@dataclass
class SyncEvaluation:
    mode: str  # "leave-one-group-out" or "cross-corpus"
    clips: list[ClipResult]
    swap_auc: float  # calibrated confidence, in sync vs swapped
    swap_auc_raw: float  # raw correlation, for comparison
    shifts_recovered: tuple[int, int]  # peak moved by the delay within one frame; tried
    in_sync_near_zero: tuple[int, int]  # reported offsets within two frames of zero; reported
    in_sync_accepted: tuple[int, int]  # clips the sync rules accept; clips
    shifted_flagged: tuple[int, int]  # shifts of >= FLAG_SHIFT frames the rules flag; tried
    swapped_flagged: tuple[int, int]
    params: dict[str, Any]
    by_band: dict[str, dict[str, dict[str, int]]]  # band -> audio -> verdict -> spans
    evidence: dict[str, float]  # the evidence model fitted on the in-sync spans (fit_evidence)

    def to_text(self) -> str:
        def ratio(pair: tuple[int, int]) -> str:
            return f"{pair[0]}/{pair[1]} = {pair[0] / max(pair[1], 1):.0%}"

        lines = [
            f"sync evaluation: {len(self.clips)} clips, {len({c.group for c in self.clips})} groups, {self.mode}",
            f"  swap ROC-AUC, calibrated confidence   {self.swap_auc:.3f}  (raw correlation {self.swap_auc_raw:.3f})",
            f"  shifts recovered within ±1 frame      {ratio(self.shifts_recovered)}",
            f"  reported in-sync offsets within ±2    {ratio(self.in_sync_near_zero)}",
            f"  in-sync clips the sync rules accept   {ratio(self.in_sync_accepted)}",
            f"  shifts of ≥{FLAG_SHIFT} frames flagged            {ratio(self.shifted_flagged)}",
            f"  swapped audio flagged                 {ratio(self.swapped_flagged)}",
            f"  evidence model fitted here: in-sync z = {self.evidence['slope']:.2f} x sqrt(speech s),"
            f" spread {self.evidence['spread']:.2f} ({self.evidence['spans']:.0f} in-sync spans)",
            "  verdicts by seconds of speech (whole clips and windows): accept / review / reject",
        ]
        for band, audios in self.by_band.items():
            for audio, counts in audios.items():
                total = max(sum(counts.values()), 1)
                shares = " / ".join(f"{counts.get(v, 0) / total:.0%}" for v in ("accept", "review", "reject"))
                lines.append(f"    {band:<10} {audio:<9} {shares}  ({total} spans)")
        lines.append("  clip                             offset  peak  confidence  swapped (median)")
        for c in self.clips:
            swapped = [v for v in c.swapped.values() if v is not None]
            conf = "-" if c.confidence is None else f"{c.confidence:.2f}"
            med = f"{np.median(swapped):.2f}" if swapped else "-"
            lines.append(
                f"  {c.name[:32]:<32} {c.offset_frames!s:>6}  {c.peak_frames!s:>4}  {conf:>10}  {med:>8}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auc(positives: Iterable[float], negatives: Iterable[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(list(positives)), np.asarray(list(negatives))
    if not len(pos) or not len(neg):
        return float("nan")
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def sync_verdict(
    result: SyncScore | None, speech: np.ndarray, fps: float, config: Config
) -> tuple[str, float]:
    """The verdict of the active rules on sync's columns (``out_of_sync``, ``sync_undecided``,
    ``sync_offset``) for a clip with this score whose frames of speech are ``speech``, and its
    seconds of speech."""
    cfg = config.section("sync", SyncConfig)
    speech_s = float(np.sum(speech & result.valid)) / fps if result is not None else 0.0
    row = {
        "sync_confidence": None if result is None else result.confidence,
        "sync_offset_frames": None if result is None else result.offset_frames,
        "sync_in_sync_p": None
        if result is None
        else in_sync_p(result.confidence, speech_s, cfg.in_sync_z_slope, cfg.in_sync_z_spread),
    }
    outcomes = {check(r, row[r.column]) for r in config.filter.active.values() if r.column in row}
    verdict = "reject" if "fail" in outcomes else "review" if "review" in outcomes else "accept"
    return verdict, speech_s


def sync_accepts(result: SyncScore | None, speech: np.ndarray, fps: float, config: Config) -> bool:
    """Whether the active sync rules pass a clip with this score (:func:`sync_verdict`)."""
    return sync_verdict(result, speech, fps, config)[0] == "accept"


def fit_evidence(judged: Iterable[Judged]) -> dict[str, float]:
    """The evidence model on in-sync spans: least-squares ``slope`` of z against sqrt(seconds of
    speech) through the origin; the ``spread`` about it, the standard deviation or, when the low
    tail is heavier, the spread that puts 1% of the spans under its 1% line (so that the rule
    ``out_of_sync``, at 1%, rejects about 1% of in-sync clips); and the ``spans``."""
    pairs = [(j.speech_s, j.confidence) for j in judged if j.audio == "in_sync" and j.confidence is not None]
    if len(pairs) < 3:
        return {"slope": float("nan"), "spread": float("nan"), "spans": float(len(pairs))}
    root_s, z = np.sqrt(np.asarray([p[0] for p in pairs])), np.asarray([p[1] for p in pairs])
    slope = float(root_s @ z / max(root_s @ root_s, 1e-9))
    residual = z - slope * root_s
    spread = max(float(np.std(residual, ddof=1)), -float(np.quantile(residual, 0.01)) / NORMAL_Q01)
    return {"slope": slope, "spread": spread, "spans": float(len(pairs))}


def spans(n_frames: int, fps: float) -> list[tuple[int, int]]:
    """The whole clip and up to two windows of each of :data:`WINDOWS_S`, as frame ranges."""
    out = [(0, n_frames)]
    for seconds in WINDOWS_S:
        width = round(seconds * fps)
        out += [(a, a + width) for a in range(0, n_frames - width + 1, width)][:2]
    return out


def _judge_spans(
    clip: SyncClip,
    model: SyncModel,
    inputs: Inputs,
    foreign: Sequence[tuple[SyncClip, np.ndarray]],
    search: int,
    config: Config,
) -> list[Judged]:
    """The clip and its windows, each in sync, shifted by :data:`FLAG_SHIFTS` both ways and with
    the first :data:`WINDOW_FOREIGN` foreign recordings' audio, judged by the sync rules."""
    z = config.section("sync", SyncConfig).significance_z
    n = len(clip.blendshapes)
    audios = [("in_sync", model.predict(inputs(clip)), inputs.speech(clip))]
    audios += [
        ("shifted", model.predict(inputs(clip, d)), inputs.speech(clip, d))
        for d in (*FLAG_SHIFTS, *(-s for s in FLAG_SHIFTS))
    ]
    audios += [
        ("foreign", np.resize(predicted, (n, predicted.shape[1])), np.resize(inputs.speech(other), n))
        for other, predicted in foreign[:WINDOW_FOREIGN]
    ]
    judged = []
    for a, b in spans(n, clip.fps):
        for kind, predicted, speech in audios:
            result = score(model, predicted[a:b], clip.blendshapes[a:b], search, z)
            verdict, speech_s = sync_verdict(result, speech[a:b], clip.fps, config)
            judged.append(
                Judged(
                    kind,
                    speech_s,
                    None if result is None else result.confidence,
                    None if result is None else result.offset_frames,
                    verdict,
                )
            )
    return judged


def by_band(judged: Iterable[Judged]) -> dict[str, dict[str, dict[str, int]]]:
    """Verdict counts by speech band (:data:`BANDS`) and audio."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for j in judged:
        band = next(name for name, low, high in BANDS if low <= j.speech_s < high)
        counts = out.setdefault(band, {}).setdefault(j.audio, {})
        counts[j.verdict] = counts.get(j.verdict, 0) + 1
    return {name: out[name] for name, *_ in BANDS if name in out}


def _evaluate_clip(
    clip: SyncClip,
    model: SyncModel,
    inputs: Inputs,
    foreign: Sequence[tuple[SyncClip, np.ndarray]],
    shifts: Sequence[int],
    search: int,
    config: Config,
) -> ClipResult:
    """One clip as it is, shifted, and with each of ``foreign`` (clip, its predicted mouth) as audio."""
    z = config.section("sync", SyncConfig).significance_z
    base = score(model, model.predict(inputs(clip)), clip.blendshapes, search, z)
    result = ClipResult(
        clip.name,
        clip.group,
        base.offset_frames if base else None,
        base.peak_frames if base else None,
        base.confidence if base else None,
        base.correlation if base else None,
        sync_accepts(base, inputs.speech(clip), clip.fps, config),
    )
    for delay in [*shifts, *(-s for s in shifts)]:
        moved = score(model, model.predict(inputs(clip, delay)), clip.blendshapes, search, z)
        result.shifts[delay] = moved.peak_frames if moved else None
        result.shift_flagged[delay] = not sync_accepts(moved, inputs.speech(clip, delay), clip.fps, config)
    n = len(clip.blendshapes)
    for other, predicted in foreign:
        swapped = score(model, np.resize(predicted, (n, predicted.shape[1])), clip.blendshapes, search, z)
        result.swapped[other.name] = swapped.confidence if swapped else None
        result.swapped_raw[other.name] = swapped.correlation if swapped else None
        speech = np.resize(inputs.speech(other), n)
        result.swap_flagged[other.name] = not sync_accepts(swapped, speech, clip.fps, config)
    result.judged = _judge_spans(clip, model, inputs, foreign, search, config)
    return result


def evaluate(
    root_path: str | Path,
    train_root: str | Path | None = None,
    shifts: Sequence[int] = SHIFTS,
    search: int = 15,
    accepted_only: bool = False,
    recipe: Recipe | None = None,
    config: Config | None = None,
    progress: bool = False,
    tags: Mapping[str, str] | None = None,
    train_tags: Mapping[str, str] | None = None,
) -> SyncEvaluation:
    """Score ``root_path``'s clips, in sync, shifted (± each of ``shifts``) and swapped, with a model
    trained on ``train_root`` (cross-corpus) or, without one, on the other groups of the same root.
    ``tags`` and ``train_tags``: only clips of videos with these source tags, in each root."""
    config, recipe = config or make_config(), recipe or Recipe()
    inputs = Inputs(recipe.features, config)
    with tempfile.TemporaryDirectory() as staging:
        clips = load_clips(root_path, Path(staging), accepted_only, tags)
        groups = sorted({c.group for c in clips})
        if train_root is None and len(groups) < 3:
            raise NotEnoughClips(
                f"{root_path} has {len(groups)} group(s) of usable clips; evaluation needs 3"
            )
        if len(groups) < 2:
            raise NotEnoughClips(f"{root_path} has {len(groups)} group(s) of usable clips; swapping needs 2")
        models: dict[str, SyncModel] = {}
        if train_root is not None:
            train_clips = load_clips(train_root, Path(staging) / "train", accepted_only, train_tags)
            if not train_clips:
                raise NotEnoughClips(f"{train_root} has no clip with a face, speech and no recorded failure")
            for clip in _bar(train_clips, "training features", progress):
                inputs(clip)
            shared = _fit_on(train_clips, inputs, recipe, {"root": str(train_root)})
            models = dict.fromkeys(groups, shared)
        results = []
        for clip in _bar(clips, "clips", progress):
            if clip.group not in models:
                models[clip.group] = _fit_on([c for c in clips if c.group != clip.group], inputs, recipe, {})
            model = models[clip.group]
            foreign = [(c, model.predict(inputs(c))) for c in clips if c.group != clip.group]
            results.append(_evaluate_clip(clip, model, inputs, foreign, shifts, search, config))
    scored = [r for r in results if r.peak_frames is not None]
    recovered = [
        abs(moved - r.peak_frames - delay) <= 1
        for r in scored
        for delay, moved in r.shifts.items()
        if moved is not None and r.peak_frames is not None
    ]
    reported = [r.offset_frames for r in results if r.offset_frames is not None]
    flagged = [f for r in results for d, f in r.shift_flagged.items() if abs(d) >= FLAG_SHIFT]
    swap_flags = [f for r in results for f in r.swap_flagged.values()]
    return SyncEvaluation(
        mode="cross-corpus" if train_root is not None else "leave-one-group-out",
        clips=results,
        swap_auc=auc(
            [r.confidence for r in scored if r.confidence is not None],
            [v for r in scored for v in r.swapped.values() if v is not None],
        ),
        swap_auc_raw=auc(
            [r.correlation for r in scored if r.correlation is not None],
            [v for r in scored for v in r.swapped_raw.values() if v is not None],
        ),
        shifts_recovered=(sum(recovered), len(scored) * 2 * len(shifts)),
        in_sync_near_zero=(sum(abs(o) <= 2 for o in reported), len(reported)),
        in_sync_accepted=(sum(r.accepted for r in results), len(results)),
        shifted_flagged=(sum(flagged), len(flagged)),
        swapped_flagged=(sum(swap_flags), len(swap_flags)),
        by_band=by_band(j for r in results for j in r.judged),
        evidence=fit_evidence(j for r in results for j in r.judged),
        params={
            "train_root": None if train_root is None else str(train_root),
            "shifts": list(shifts),
            "search": search,
            "accepted_only": accepted_only,
            "tags": dict(tags or {}),
            "train_tags": dict(train_tags or {}),
            **asdict(recipe),
        },
    )
