"""``curate review push``: send every clip whose current verdict is review to Label Studio.

Each task carries the clip cut as an mp4 and its main blendshape curves as a CSV time series
synced with the video (both served from the root's ``review_media/`` through local storage),
the transcript, the scores and reasons, and predictions pre-filled with the pipeline's verdict and
emotion. Each prediction's score is the filter's certainty (1 - how borderline the clip is), so
Label Studio's uncertainty sampling serves the least certain clips first; tasks are also imported
most borderline first. Gold clips (decisions of source ``gold``) are mixed in at ``[review]
gold_rate``, looking like any other task, to measure annotators. A clip already in the project is
never imported again, so pushing twice, or again after a killed push, adds only what is missing.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from tqdm import tqdm

from extractors.registry import dataset_schemas, in_effect
from filters.rules import closeness
from ingest.sources import localize
from manifests.lock import hold
from manifests.schema import BLENDSHAPE_NAMES
from manifests.store import DatasetRoot
from manifests.views import connect as connect_views
from review.annotators import LATEST_FILTER_REASONS
from review.client import LabelStudio, ReviewError
from review.media import cut_clip
from review.project import MEDIA_DIR, MODEL_VERSION, ensure_project
from settings.config import Config, Rule

#: Curves shown to annotators: name -> blendshapes averaged.
CURVES: dict[str, tuple[str, ...]] = {
    "jawOpen": ("jawOpen",),
    "mouthClose": ("mouthClose",),
    "mouthFunnel": ("mouthFunnel",),
    "mouthSmile": ("mouthSmileLeft", "mouthSmileRight"),
    "browInnerUp": ("browInnerUp",),
    "eyeBlink": ("eyeBlinkLeft", "eyeBlinkRight"),
}
SCORES = (
    "sync_offset_frames",
    "sync_confidence",
    "face_detect_rate",
    "speech_ratio",
    "emotion_expressiveness",
    "quality_sharpness",
    "synthetic_score",
)


@dataclass(frozen=True)
class PushSummary:
    project: int
    pushed: int
    already: int
    gold: int = 0

    def to_text(self) -> str:
        gold = f" (and {self.gold} gold clip(s) mixed in)" if self.gold else ""
        return f"project {self.project}: {self.pushed} task(s) pushed{gold}, {self.already} already there"


def borderline(row: dict[str, Any], rules: dict[str, Rule]) -> float:
    """How close the clip is to a limit, 0..1 (1: on it), over the threshold rules it is in
    review for (:func:`filters.rules.closeness`)."""
    return max(
        [
            closeness(rules[name], row.get(rules[name].column))
            for name in row["reasons"] or []
            if name in rules
        ],
        default=0.0,
    )


def write_curves(t_s: list[float], blendshapes: list[Any], start_s: float, out: Path) -> Path:
    """The task's time series as CSV: clip time in seconds and each curve (0 where no face)."""
    no_face = [0.0] * len(BLENDSHAPE_NAMES)
    shapes = np.asarray([b if b is not None else no_face for b in blendshapes], np.float64)
    columns = [np.asarray(t_s, np.float64) - start_s]
    columns += [
        shapes[:, [BLENDSHAPE_NAMES.index(c) for c in chans]].mean(axis=1) for chans in CURVES.values()
    ]
    lines = [",".join(["time_s", *CURVES])]
    lines += [",".join(f"{v:.4f}" for v in row) for row in zip(*columns, strict=True)]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    return out


def task(row: dict[str, Any], video_url: str, curves_url: str, score: float) -> dict[str, Any]:
    """One Label Studio task with its prediction; ``score`` is how borderline the clip is (0..1),
    the prediction's score the filter's certainty."""
    scores = ", ".join(f"{k} {row[k]:.3g}" for k in SCORES if row.get(k) is not None)
    if row.get("synthetic_strongest"):
        scores += f"; synthetic: strongest cue {row['synthetic_strongest']} (docs/scores.md)"
    prediction = [
        {"from_name": "verdict", "to_name": "video", "type": "choices", "value": {"choices": ["accept"]}}
    ]
    if row["reasons"]:
        choices = {"choices": list(row["reasons"])}
        prediction.append({"from_name": "reasons", "to_name": "video", "type": "choices", "value": choices})
    if row.get("emotion"):  # the label the clip would go out with (clip_emotion)
        emotion = {"choices": [row["emotion"]]}
        prediction.append({"from_name": "emotion", "to_name": "video", "type": "choices", "value": emotion})
    return {
        "data": {
            "clip_id": row["clip_id"],
            "title": f"{Path(row['uri']).name}  {row['start_s']:.2f}-{row['end_s']:.2f} s  (review: {', '.join(row['reasons'] or [])})",
            "video": video_url,
            "curves": curves_url,
            "duration_s": round(row["end_s"] - row["start_s"], 3),
            "transcript": row.get("speech_text") or "(no transcript)",
            "scores": scores or "(no scores)",
            "borderline": round(score, 3),
        },
        "predictions": [{"model_version": MODEL_VERSION, "score": round(1 - score, 3), "result": prediction}],
    }


def review_rows(root: DatasetRoot, gold: bool = False) -> list[dict[str, Any]]:
    """The clips whose current verdict is review (``gold``: the gold clips), with what a task shows;
    ``reasons`` are the clip's latest filter reasons."""
    con = connect_views(root, dataset_schemas())
    which = "d.source = 'gold'" if gold else "d.verdict = 'review'"
    return (
        con.sql(
            f"""with f as ({LATEST_FILTER_REASONS})
               select c.*, v.uri, v.has_audio, t.t_s, t.blendshapes,
                      coalesce(f.reasons, d.reasons) reasons, m.emotion
               from current_decisions d join clips c using (clip_id) join videos v on v.video_id = c.video_id
               join tracks t on t.clip_id = c.clip_id left join f on f.clip_id = c.clip_id
               join clip_emotion m on m.clip_id = c.clip_id
               where {which} order by c.clip_id"""
        )
        .to_arrow_table()
        .to_pylist()
    )


def push(root_path: str | Path, config: Config, client: LabelStudio, progress: bool = True) -> PushSummary:
    """Import the root's review clips not yet in the project; returns what was done."""
    root = DatasetRoot(root_path)
    files_root = Path(
        config.review.files_root or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT") or root.path
    ).resolve()
    media_dir = root.path.resolve() / MEDIA_DIR
    if not media_dir.is_relative_to(files_root):
        raise ReviewError(f"review media {media_dir} are outside the server's local-files root {files_root}")
    # One push at a time per root; a killed one's half-written media are swept (never served).
    with hold(root, "review-push"):
        for stale in media_dir.glob(".*.tmp*"):
            stale.unlink(missing_ok=True)
        return _push(root, config, client, media_dir, files_root, progress)


def _push(
    root: DatasetRoot, config: Config, client: LabelStudio, media_dir: Path, files_root: Path, progress: bool
) -> PushSummary:
    rows = review_rows(root)
    pid = ensure_project(client, config.review, media_dir)
    present = {t["data"].get("clip_id") for t in client.tasks(pid)}
    todo = [r for r in rows if r["clip_id"] not in present]
    rules = in_effect(config).active
    todo.sort(key=lambda r: -borderline(r, rules))
    scores = {r["clip_id"]: borderline(r, rules) for r in todo}
    gold_rows = review_rows(root, gold=True) if config.review.gold_rate > 0 else []
    wanted = math.ceil(config.review.gold_rate * len(todo))
    gold = _gold_to_mix(root, gold_rows, present, wanted, list(scores.values()))
    scores.update(gold)
    todo = _interleave(todo, [r for r in gold_rows if r["clip_id"] in gold])
    staging = root.path / "_staging"
    bar = tqdm(total=len(todo), unit="task", desc="review push", disable=not progress)
    with bar:
        for start in range(0, len(todo), config.review.batch):
            batch = []
            for row in todo[start : start + config.review.batch]:
                source = localize(row["uri"], staging)
                mp4 = cut_clip(
                    source,
                    row["start_s"],
                    row["end_s"],
                    row["fps"],
                    media_dir / f"{row['clip_id']}.mp4",
                    row["has_audio"],
                )
                csv = write_curves(
                    row["t_s"] or [], row["blendshapes"] or [], row["start_s"], mp4.with_suffix(".csv")
                )
                video_url, curves_url = (
                    f"/data/local-files/?d={quote(str(f.relative_to(files_root)))}" for f in (mp4, csv)
                )
                batch.append(task(row, video_url, curves_url, scores[row["clip_id"]]))
            client.import_tasks(pid, batch)
            bar.update(len(batch))
    return PushSummary(pid, len(todo) - len(gold), len(rows) - (len(todo) - len(gold)), len(gold))


def _gold_to_mix(
    root: DatasetRoot, gold_rows: list[dict[str, Any]], present: set[Any], n: int, scores: list[float]
) -> dict[str, float]:
    """Up to ``n`` of the gold clips not yet in the project, each given the score of a review clip
    drawn at random (so the queue serves them among the others); clip_id -> score."""
    if n == 0 or not scores:
        return {}
    rng = random.Random(f"{root.path}:{len(present)}")
    candidates = sorted(r["clip_id"] for r in gold_rows if r["clip_id"] not in present)
    return {clip: rng.choice(scores) for clip in rng.sample(candidates, min(n, len(candidates)))}


def _interleave(review: list[dict[str, Any]], gold: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gold rows spread evenly among the review rows (import order is the sequential queue)."""
    out = list(review)
    for k, row in enumerate(gold):
        out.insert(round((k + 1) * len(out) / (len(gold) + 1)), row)
    return out
