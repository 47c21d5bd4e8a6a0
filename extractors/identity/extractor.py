"""The identity signal: one face descriptor per clip, of its subject's face track.

The face extractor keeps square crops of the subject while it decodes (``face_crops``); this
signal describes each (:class:`~extractors.identity.embedding.FaceEmbedder`), looks for a change
of person along them (a cut from one speaker to the next inside a clip: ``identity_change_s``,
the rule ``speaker_change``), and embeds the sharpest, most frontal ones (of the person shown
longer) into one unit vector, stored in the ``tracks`` table. Which person that is, across the root, is
decided at the end of a run over every clip at once (:mod:`extractors.identity.assign`).

Beside the face, the voice heard: a voice descriptor of the clip's speech
(:class:`~extractors.identity.voice.VoiceEmbedder`, ``identity_voice``), which the root compares
with the voices of the same person's other clips (the ``voice_matches`` view: voice-over, dubbing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.base import ClipRef, Extraction, Extractor
from extractors.face.crops import face_samples
from extractors.face.extractor import too_few_face_frames
from extractors.identity.embedding import DIM, FaceEmbedder, unit
from extractors.identity.model import FACE_EMBEDDING
from extractors.identity.voice import VOICE_DIM, VOICE_EMBEDDING, VoiceEmbedder
from extractors.speech.window import SPEECH_WINDOW, window_speech
from ingest.media import SPEECH_SR_HZ
from manifests.schema import field
from settings.config import Rule, Section

#: Voice match under which a clip's voice is not its person's (docs/scores.md, "The voice heard").
VOICE_MIN_MATCH = 0.81
#: Face distance from which voices decide (the smallest between two different training speakers,
#: bench/identity.py: docs/scores.md, "The voice heard").
VOICE_APART_FROM = 0.27


class IdentityConfig(Section):
    """Who each clip's subject is: a face descriptor per clip, identities clustered over the root."""

    model: str = Field("face-embedding", description="registry name of the face descriptor model")
    crops: int = Field(
        6, ge=1, le=64, description="face crops per clip looked at (the sharpest frontal ones embedded)"
    )
    threshold: float = Field(
        0.33,
        gt=0,
        le=2,
        description="distance (Euclidean between unit descriptors) under which a clip's face joins an "
        "identity (docs/scores.md, 'Identity')",
    )
    cut: bool = Field(
        True,
        description="cut a clip whose subject becomes another person into one clip per person, each at least "
        "[segment] min_clip_s long (the span between the two people's sampled faces left out)",
    )
    voice: bool = Field(
        True, description="also describe the voice heard (identity_voice), for the voice check"
    )
    voice_model: str = Field("voice-embedding", description="registry name of the voice descriptor model")
    voice_min_speech_s: float = Field(
        2.0, ge=0.5, description="seconds of speech (voice activity) a clip needs for a voice descriptor"
    )
    voice_apart_from: float = Field(
        VOICE_APART_FROM,
        gt=0,
        le=2,
        description="face distance from which two clips whose voices differ (under voice_min_match) are "
        "not filed as one person (docs/scores.md, 'The voice heard')",
    )
    voice_min_match: float = Field(
        VOICE_MIN_MATCH,
        ge=-1,
        le=1,
        description="cosine of a clip's voice to its person's other clips' voices under which the report "
        "flags it (voice-over, dubbing), and under which voices keep ambiguous faces apart "
        "(docs/scores.md, 'The voice heard')",
    )


class IdentityExtractor(Extractor):
    name = "identity"
    version = "2"
    needs = ("face",)
    settings_class = IdentityConfig
    model_specs = (FACE_EMBEDDING, VOICE_EMBEDDING)
    default_rules: ClassVar[dict[str, Rule]] = {
        # Two people in the subject's track (a cut from one speaker to another that no shot
        # boundary caught): the clip goes to review, never rejected on it alone.
        "speaker_change": Rule(column="identity_people", max=1, beyond="review", missing="accept"),
        # ... and when it was cut there, its parts stand for it (curate/speaker_cuts.py).
        "speaker_cut": Rule(column="identity_parts", max=0, beyond="reject", missing="accept"),
    }
    clip_fields: ClassVar[list[pa.Field]] = [
        field("identity_faces", pa.int32(), "face crops of the subject looked at for its descriptor"),
        field(
            "identity_people",
            pa.int32(),
            "people seen in the subject's face track: 1, or 2 when it changes (identity_change_s)",
        ),
        field(
            "identity_change_s",
            pa.float32(),
            "seconds into the clip of the first face of the second person; null: one person",
        ),
        field(
            "identity_before_s",
            pa.float32(),
            "seconds into the clip of the last face of the first person (the change lies between it and "
            "identity_change_s); null: one person",
        ),
        field(
            "identity_parts",
            pa.int32(),
            "parts of a clip with two people that become clips of their own, one person each (at least "
            "[segment] min_clip_s long): 0-2; null: one person, or [identity] cut off",
        ),
        field(
            "identity_skipped",
            pa.string(),
            "why the clip has no descriptor although it has a face, e.g. few_face_frames: ... or no_usable_face",
        ),
        field(
            "identity_voice_s",
            pa.float32(),
            "seconds of speech its voice descriptor heard (the first 30 s of speech at most); null: none",
        ),
    ]
    track_fields: ClassVar[list[pa.Field]] = [
        field(
            "identity_embedding",
            pa.list_(pa.float32(), DIM),
            "unit face descriptor of the subject (dlib ResNet, 128-d); null: none",
        ),
        field(
            "identity_voice",
            pa.list_(pa.float32(), VOICE_DIM),
            "unit voice descriptor of the clip's speech (Resemblyzer GE2E, 256-d), given with a face "
            "descriptor; null: none (no face descriptor, under [identity] voice_min_speech_s of speech, or off)",
        ),
    ]

    @property
    def settings(self) -> IdentityConfig:
        return self.config.section(self.name, IdentityConfig)

    def models(self) -> list[str]:
        return [self.settings.model] + ([self.settings.voice_model] if self.settings.voice else [])

    def face_crops(self) -> int:
        return self.settings.crops

    def setup(self) -> None:
        self._embedder = FaceEmbedder(self.model_path(self.settings.model))
        self._voice = (
            VoiceEmbedder(self.model_path(self.settings.voice_model)) if self.settings.voice else None
        )

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        boxes = earlier.get("face_box")
        if not boxes:
            return out
        out.clip["identity_skipped"] = too_few_face_frames(self.config, boxes)
        if out.clip["identity_skipped"]:
            return out
        samples = face_samples(clip, boxes, self.settings.crops)
        out.clip["identity_faces"] = len(samples)
        chips = [
            (s.index, c) for s, c in ((s, self._embedder.chip(s.crop)) for s in samples) if c is not None
        ]
        described = self._embedder.describe([c for _, c in chips])  # (n, 128): each chip once
        keep = range(len(chips))
        change = change_point(described, self.settings.threshold)
        if change is not None:  # two people: the clip's identity is the one shown longer
            out.clip["identity_people"] = 2
            out.clip["identity_change_s"] = chips[change][0] / clip.fps
            out.clip["identity_before_s"] = chips[change - 1][0] / clip.fps
            if self.settings.cut:
                parts = part_spans(
                    clip.start_s,
                    clip.end_s,
                    clip.fps,
                    out.clip["identity_before_s"],
                    out.clip["identity_change_s"],
                )
                out.clip["identity_parts"] = sum(
                    1 for start, end in parts if end - start >= self.config.segment.min_clip_s
                )
            keep = range(change, len(chips)) if 2 * change < len(chips) else range(change)
        elif chips:
            out.clip["identity_people"] = 1
        position = {id(chips[i][1]): i for i in keep}
        picked = [position[id(c)] for c in self._embedder.pick([chips[i][1] for i in keep])]
        if not picked:
            out.clip["identity_skipped"] = "no_usable_face: no crop large, frontal and sharp enough"
        else:
            out.track["identity_embedding"] = [float(v) for v in unit(described[picked].mean(axis=0))]
            self.describe_voice(clip, out)
        return out

    def describe_voice(self, clip: ClipRef, out: Extraction) -> None:
        """Set the clip's voice descriptor from its speech: the speech window the speech signal
        left (the first 30 s of speech), else the clip's voice activity found here."""
        if self._voice is None or not clip.has_audio:
            return
        derived = clip.media.derived
        if SPEECH_WINDOW in derived:
            window = derived[SPEECH_WINDOW]
            speech = window.audio if window is not None else np.zeros(0, np.float32)
        else:
            speech = window_speech(clip.audio())
        if len(speech) < self.settings.voice_min_speech_s * SPEECH_SR_HZ:
            return
        out.clip["identity_voice_s"] = len(speech) / SPEECH_SR_HZ
        out.track["identity_voice"] = [float(v) for v in self._voice.embed(speech)]


def part_spans(
    start_s: float, end_s: float, fps: float, before_s: float, change_s: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The two one-person parts (source seconds) of the clip ``start_s``-``end_s`` (tracks at
    ``fps``) whose subject changes between ``before_s`` (the first person's last sampled face)
    and ``change_s`` (the second's first), both seconds into the clip: up to the end of that last
    face's frame, and from that first face on; the span between, where either may show, belongs
    to neither."""
    return (start_s, min(end_s, start_s + before_s + 1.0 / fps)), (start_s + change_s, end_s)


#: Crops on each side of a change of person, at least.
MIN_SIDE = 2


def change_point(descriptors: np.ndarray, threshold: float) -> int | None:
    """Where a time-ordered run of face descriptors ((n, d), one per crop) turns into another
    person's: the split ``k`` (crops ``:k`` and ``k:``, at least :data:`MIN_SIDE` each) whose
    two sides' mean descriptors are farthest apart, when that distance (between unit means) is
    above ``threshold``; ``None`` for one person."""
    n = len(descriptors)
    best: tuple[float, int] | None = None
    for k in range(MIN_SIDE, n - MIN_SIDE + 1):
        distance = float(
            np.linalg.norm(unit(descriptors[:k].mean(axis=0)) - unit(descriptors[k:].mean(axis=0)))
        )
        if best is None or distance > best[0]:
            best = (distance, k)
    return best[1] if best is not None and best[0] > threshold else None
