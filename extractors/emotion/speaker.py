"""Speaker-relative emotion labels over a dataset root (``curate emotion speakers``).

One clip does not show its speaker at rest: an actor whose resting face the face model reads as
angry has every clip read as angry. When a root holds several clips of one speaker, each cue is
judged against that speaker's own mean: the mean of the speaker's clips' face-model log
probabilities and of their median blendshapes is moved onto the fusion's reference (the means
over the clips it was fitted on, :attr:`EmotionFusion.reference_face_log`), by the share
``(n - 1) / (n - 1 + [emotion] speaker_shrink)`` for a speaker with ``n`` clips, and the
fusion judges the moved cues. A speaker with one clip keeps its clip's label; the differences
between one speaker's clips are kept whole.

A clip's speaker is its video's ``speaker_id`` source tag (a column of the list file ``curate
run`` read), else the identity of its face (``identity_id``, extractors/identity), else the actor
in its file name (MEAD, RAVDESS, CREMA-D naming). Clips of none are not grouped: a video of one person is not assumed to hold every emotion, which the shift
assumes (acted corpora give each actor every class; a vlogger smiling in every clip would be
read less happy).

Each labelling appends one row per judged clip to the ``emotion_speaker`` table (the latest per
clip is the ``speaker_emotion`` view), which ``curate export`` prefers to the clip's own label.
Figures: docs/scores.md (``python -m bench.emotion_speaker``, ``curate emotion eval``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from extractors.emotion.fusion import EMOTION_CLASSES, EmotionFusion, face_log_probs, face_median
from extractors.emotion.names import label_from_name
from extractors.emotion.voice import fuse
from extractors.registry import dataset_schemas
from manifests.lock import hold
from manifests.store import existing_root, new_key
from manifests.views import connect
from settings.config import Config

TABLE = "emotion_speaker"
#: The columns of a clip's own label (EmotionExtractor.labels) that a speaker-relative row carries.
LABEL_COLUMNS = ("emotion_probs", "emotion_dominant", "emotion_confidence", "emotion_intensity")


def toward_reference(
    values: np.ndarray, speakers: Sequence[str | None], reference: np.ndarray, shrink: float
) -> np.ndarray:
    """``values`` (n, d) with each speaker's mean (over their rows without NaN) moved onto
    ``reference`` (d,) by the share ``(k - 1) / (k - 1 + shrink)`` of a speaker with ``k`` such
    rows; rows whose speaker is None are left as they are. Returns a new array."""
    out = np.array(values, np.float64)
    names = np.array([s if s is not None else "" for s in speakers], dtype=object)
    usable = ~np.isnan(out).any(axis=1)
    for speaker in {s for s in speakers if s is not None}:
        mine = (names == speaker) & usable
        if mine.any():
            share = (mine.sum() - 1) / (mine.sum() - 1 + shrink)
            out[mine] -= share * (out[mine].mean(axis=0) - reference)
    return out


def speaker_relative(
    face_logs: np.ndarray,
    medians: np.ndarray,
    speakers: Sequence[str | None],
    reference: tuple[np.ndarray, np.ndarray],
    shrink: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``face_logs`` (n, 7) and ``medians`` (n, 52) with each speaker's mean moved onto
    ``reference`` ((7,), (52,)) (:func:`toward_reference`). Returns new arrays."""
    return (
        toward_reference(face_logs, speakers, reference[0], shrink),
        toward_reference(medians, speakers, reference[1], shrink),
    )


def speaker_of(uri: str, tags: dict[str, str] | None, identity: str | None = None) -> str | None:
    """A clip's speaker: the ``speaker_id`` tag, else its face's ``identity`` (identity_id), else
    the actor in a corpus file name, else None."""
    if tags and tags.get("speaker_id"):
        return tags["speaker_id"]
    return identity or label_from_name(Path(uri).name)[1]


def relative_probs(
    fusion: EmotionFusion,
    face_probs: np.ndarray,
    medians: np.ndarray,
    speakers: Sequence[str | None],
    shrink: float,
) -> np.ndarray:
    """The face side's class probabilities (n, 7) of the speaker-relative cues of clips with
    face-model distributions ``face_probs`` (n, 7) and median blendshapes ``medians`` (n, 52)."""
    if fusion.reference_face_log is None or fusion.reference_median is None:
        raise ValueError(
            f"the emotion fusion for {fusion.face_model} keeps no reference means: "
            "refit it with `curate emotion train` to label speaker-relative"
        )
    reference = (fusion.reference_face_log, fusion.reference_median)
    logs, meds = speaker_relative(face_log_probs(face_probs), medians, speakers, reference, shrink)
    return fusion.probs(logs, meds)


def relative_voice(
    voice_probs: np.ndarray, speakers: Sequence[str | None], reference_log: np.ndarray, shrink: float
) -> np.ndarray:
    """The voice cue's class probabilities (n, 7) judged against each speaker's habitual voice:
    the mean of a speaker's log-probabilities moved onto the model's (``reference_log``, the mean
    over the speech it was fitted on); rows of NaN (no voice reading) stay NaN."""
    logs = toward_reference(
        np.log(np.asarray(voice_probs, np.float64) + 1e-9), speakers, reference_log, shrink
    )
    out = np.full_like(logs, np.nan)
    read = ~np.isnan(logs).any(axis=1)
    p = np.exp(logs[read] - logs[read].max(axis=1, keepdims=True))
    out[read] = p / p.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class SpeakerLabelling:
    label_set: str | None  # None: nothing written (no speaker with several clips)
    clips: int  # clips with a face-model reading
    grouped: int  # of them, clips of a speaker with several: labelled speaker-relative
    speakers: int  # speakers with several clips
    changed: int  # grouped clips whose label differs from their own clip label
    labelled: int  # grouped clips with a class (not uncertain)

    def to_text(self) -> str:
        if self.label_set is None:
            return (
                f"speaker-relative emotion: none of {self.clips} clip(s) has a speaker with several clips "
                "(speaker_id tag or corpus file name): every clip keeps its own label"
            )
        return (
            f"speaker-relative emotion ({self.label_set}): {self.grouped} of {self.clips} clip(s), "
            f"{self.speakers} speaker(s) with several clips; {self.labelled} labelled, "
            f"{self.changed} changed from the clip's own label"
        )


def label_root(root_path: str | Path, config: Config, changed_only: bool = False) -> SpeakerLabelling:
    """Judge every clip with a face-model reading whose speaker has several such clips against
    that speaker's clips, and append the labels to the ``emotion_speaker`` table (under the
    root's lock). Clips of a speaker with one clip, or of none, keep their own label and get no
    row; only their videos' names and tags are read, not their tracks. ``changed_only``: leave
    out the speakers whose clips the latest labels already cover (what a run does at its end)."""
    from extractors.emotion.extractor import EmotionConfig, EmotionExtractor

    root = existing_root(root_path)
    con = connect(root, dataset_schemas())
    clips = (
        con.sql(
            """select c.clip_id, v.uri, v.source_tags, c.identity_id, c.emotion_dominant
               from clips c join videos v using (video_id)
               where c.emotion_face_probs is not null order by c.clip_id"""
        )
        .to_arrow_table()
        .to_pylist()
    )
    found = {
        c["clip_id"]: speaker_of(c["uri"], dict(c["source_tags"] or {}), c["identity_id"]) for c in clips
    }
    speaker = {clip_id: s for clip_id, s in found.items() if s is not None}
    counts = Counter(speaker.values())
    grouped = [c for c in clips if counts[speaker.get(c["clip_id"], "")] > 1]
    if changed_only:
        current = {
            (clip_id, who, n)
            for clip_id, who, n in con.sql(
                "select clip_id, speaker, speaker_clips from speaker_emotion"
            ).fetchall()
        }
        stale = {
            speaker[c["clip_id"]]
            for c in grouped
            if (c["clip_id"], speaker[c["clip_id"]], counts[speaker[c["clip_id"]]]) not in current
        }
        grouped = [c for c in grouped if speaker[c["clip_id"]] in stale]
    label_set = new_key()
    records: list[dict[str, Any]] = []
    if grouped:
        extractor = EmotionExtractor(config)
        readings = _readings(con, [c["clip_id"] for c in grouped])
        ids = [c["clip_id"] for c in grouped if c["clip_id"] in readings]
        cfg = config.section("emotion", EmotionConfig)
        who = [speaker[i] for i in ids]
        visual = relative_probs(
            extractor.load_fusion(),
            np.array([readings[i][0] for i in ids], np.float64),
            np.array([readings[i][1] for i in ids], np.float64),
            who,
            cfg.speaker_shrink,
        )
        voices = np.array([readings[i][2] for i in ids], np.float64)
        if cfg.voice and not np.isnan(voices).all():
            voices = relative_voice(
                voices, who, extractor.load_voice().model.reference_log, cfg.speaker_shrink
            )
        now = datetime.now(UTC)
        for clip_id, face, voice in zip(ids, visual, voices, strict=True):
            usable_voice = None if not cfg.voice or np.isnan(voice).any() else voice
            fused, _ = fuse(face, usable_voice, cfg.face_weight, cfg.voice_weight)
            label = extractor.labels(face if fused is None else fused)
            records.append(
                {
                    "clip_id": clip_id,
                    "speaker": speaker[clip_id],
                    "speaker_clips": counts[speaker[clip_id]],
                    **{k: label[k] for k in LABEL_COLUMNS},
                    "labelled_at": now,
                    "label_set": label_set,
                }
            )
    if records:
        with hold(root, f"emotion-{label_set}"):
            root.write_table(TABLE, label_set, pa.Table.from_pylist(records, schema=dataset_schemas()[TABLE]))
    own = {c["clip_id"]: c["emotion_dominant"] for c in clips}
    return SpeakerLabelling(
        label_set if records else None,
        len(clips),
        len(records),
        len({r["speaker"] for r in records}),
        sum(1 for r in records if r["emotion_dominant"] != own[r["clip_id"]]),
        sum(1 for r in records if r["emotion_dominant"]),
    )


def _readings(
    con: duckdb.DuckDBPyConnection, clip_ids: Sequence[str]
) -> dict[str, tuple[Any, np.ndarray, np.ndarray]]:
    """Clip id -> (face-model distribution (7,), median blendshapes over the frames with a face
    (52,), the voice cue's distribution (7,), NaN without one) of the clips of ``clip_ids`` that
    have a face in their track."""
    con.register("_wanted", pa.table({"clip_id": list(clip_ids)}))
    voice = "c.emotion_voice_probs" if "emotion_voice_probs" in con.table("clips").columns else "null"
    rows = con.sql(
        f"""select c.clip_id, c.emotion_face_probs, t.blendshapes, {voice}
            from clips c join _wanted w using (clip_id) join tracks t using (clip_id)"""
    ).fetchall()
    none = np.full(len(EMOTION_CLASSES), np.nan)
    return {
        clip_id: (probs, median, np.asarray(v, np.float64) if v is not None else none)
        for clip_id, probs, blendshapes, v in rows
        if (median := face_median(blendshapes)) is not None
    }
