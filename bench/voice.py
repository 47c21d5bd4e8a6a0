"""The voice heard against the person seen (:mod:`extractors.identity.voice`): does a clip's voice
descriptor, compared with the voices of the same person's other clips, tell their own voice from
another's (voice-over, dubbing)?

    python -m bench.voice [--json docs/bench/voice.json]

The check is the ``voice_matches`` view's: the cosine of a clip's voice to the sum of the other
clips' voices of its identity (1 to 3 of them here). ``own``: the clip is the person's own voice;
``dubbed``: another speaker's clip checked against this person's clips. A clip is flagged under
the threshold; the false-flag share is of ``own``, the caught share of ``dubbed``.

Speakers are split once (docs/scores.md, "The voice heard"):

- train (the threshold is chosen here only): every second speaker of each corpus of
  ``pool/speech_emotion`` in name order, starting with the first, and the pool's training videos
  (docs/pool/train.csv, emotion_train.csv);
- test (reported as it comes out): the other speakers of ``pool/speech_emotion`` and the test
  videos (test.csv, emotion_test.csv, the real clips of generated/, the fixtures).

Emotional-speech "clips" are a speaker's utterances joined in a seeded random order until
``CLIP_S`` of speech, at most ``CLIPS_PER_SPEAKER`` of them. A video's voice is its first 30 s of
speech, as the identity signal takes it. The threshold: the largest on a 0.01 grid whose false-flag
share on train is at most ``MAX_FALSE_FLAG``. Also reported: the fixture GeneFace clip (the May
speaker's face, another voice) against r3p_May_5s, and the cost per second of speech.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.identity import GENERATED_OF_MAY, SHARED, recordings
from extractors.identity.voice import VOICE_EMBEDDING, VoiceEmbedder
from extractors.speech.window import window_speech
from ingest.media import SPEECH_SR_HZ, read_audio
from settings.models import cache_dir, resolve

SPEECH = SHARED / "pool" / "speech_emotion"
CLIP_S = 6.0
CLIPS_PER_SPEAKER = 4
MIN_SPEECH_S = 2.0  # the identity signal's [identity] voice_min_speech_s
MAX_REFERENCES = 3
MAX_FALSE_FLAG = 0.05
GRID = np.round(np.arange(0.40, 0.951, 0.01), 2)


class Voices:
    """Voice descriptors of speech, timed."""

    def __init__(self) -> None:
        self.embedder = VoiceEmbedder(resolve(VOICE_EMBEDDING, {}, cache_dir(None)))
        self.seconds = 0.0
        self.speech_s = 0.0

    def of(self, speech: np.ndarray) -> np.ndarray | None:
        if len(speech) < MIN_SPEECH_S * SPEECH_SR_HZ:
            return None
        started = time.perf_counter()
        vector = self.embedder.embed(speech)
        self.seconds += time.perf_counter() - started
        self.speech_s += len(speech) / SPEECH_SR_HZ
        return vector


def speech_of(path: Path, end_s: float | None = None) -> np.ndarray:
    """The file's speech (voice activity joined), the first 30 s at most; empty without audio."""
    try:
        audio = read_audio(path, 0.0, end_s)
    except (IndexError, ValueError):  # no audio stream
        return np.zeros(0, np.float32)
    return window_speech(audio)


def emotional_speech_clips(voices: Voices) -> list[tuple[str, str, np.ndarray]]:
    """(speaker, split, voice) of clips joined from each pool speaker's utterances."""
    with (SPEECH / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    by_speaker: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        by_speaker.setdefault((row["dataset"], row["speaker"]), []).append(row["file"])
    order: dict[str, int] = {}
    out = []
    for (dataset, speaker), files in sorted(by_speaker.items()):
        split = "train" if order.get(dataset, 0) % 2 == 0 else "test"
        order[dataset] = order.get(dataset, 0) + 1
        rng = np.random.default_rng(zlib.crc32(speaker.encode()))
        pieces: list[np.ndarray] = []
        made = 0
        for index in rng.permutation(len(files)):
            pieces.append(speech_of(SPEECH / files[index]))
            if sum(len(p) for p in pieces) >= CLIP_S * SPEECH_SR_HZ:
                vector = voices.of(np.concatenate(pieces))
                if vector is not None:
                    out.append((speaker, split, vector))
                    made += 1
                pieces = []
                if made == CLIPS_PER_SPEAKER:
                    break
    return out


def video_voices(voices: Voices) -> tuple[list[tuple[str, str, np.ndarray]], dict[str, np.ndarray]]:
    """(speaker, split, voice) of every pool and fixture video with speech, and voices by key."""
    out, by_key = [], {}
    for recording in recordings():
        vector = voices.of(speech_of(recording.path, 60.0))
        if vector is not None:
            by_key[recording.key] = vector
            if recording.split != "extra":
                out.append((recording.speaker, recording.split, vector))
    return out, by_key


def match(voice: np.ndarray, references: Sequence[np.ndarray]) -> float:
    """Cosine of ``voice`` to the sum of ``references`` (the voice_matches view's measure)."""
    total = np.sum(references, axis=0)
    return float(voice @ total / np.linalg.norm(total))


def trials(clips: list[tuple[str, str, np.ndarray]], split: str) -> dict[str, list[float]]:
    """The own and dubbed matches of one split: each clip against up to 3 other clips of its
    speaker (own), and each other speaker's first clip against the same references (dubbed)."""
    mine = [(s, v) for s, sp, v in clips if sp == split]
    speakers = sorted({s for s, _ in mine})
    first = {s: next(v for t, v in mine if t == s) for s in speakers}
    own, dubbed = [], []
    for i, (speaker, voice) in enumerate(mine):
        others = [v for j, (t, v) in enumerate(mine) if t == speaker and j != i][:MAX_REFERENCES]
        if not others:
            continue
        own.append(match(voice, others))
        dubbed += [match(first[t], others) for t in speakers if t != speaker]
    return {"own": own, "dubbed": dubbed}


def rates(found: dict[str, list[float]], threshold: float) -> dict[str, Any]:
    own, dubbed = np.array(found["own"]), np.array(found["dubbed"])
    return {
        "own": len(own),
        "dubbed": len(dubbed),
        "false_flag": round(float((own < threshold).mean()), 4) if len(own) else None,
        "caught": round(float((dubbed < threshold).mean()), 4) if len(dubbed) else None,
        "own_min": round(float(own.min()), 3) if len(own) else None,
        "dubbed_max": round(float(dubbed.max()), 3) if len(dubbed) else None,
    }


def merged(*found: dict[str, list[float]]) -> dict[str, list[float]]:
    return {k: [x for f in found for x in f[k]] for k in ("own", "dubbed")}


def choose(train: dict[str, list[float]]) -> float:
    own = np.array(train["own"])
    allowed = [t for t in GRID if (own < t).mean() <= MAX_FALSE_FLAG]
    return float(max(allowed))


def evaluate() -> dict[str, Any]:
    voices = Voices()
    speech = emotional_speech_clips(voices)
    videos, by_key = video_voices(voices)
    found = {
        (source, split): trials(clips, split)
        for source, clips in (("speech_emotion", speech), ("video", videos))
        for split in ("train", "test")
    }
    threshold = choose(merged(found["speech_emotion", "train"], found["video", "train"]))
    may = by_key.get("video/r3p_May_5s.mp4")
    generated = by_key.get(f"video/{GENERATED_OF_MAY}")
    return {
        "threshold": threshold,
        "max_false_flag": MAX_FALSE_FLAG,
        "clip_s": CLIP_S,
        "train": rates(merged(found["speech_emotion", "train"], found["video", "train"]), threshold),
        "test": rates(merged(found["speech_emotion", "test"], found["video", "test"]), threshold),
        "by_source": {f"{s}/{sp}": rates(f, threshold) for (s, sp), f in found.items()},
        "geneface_vs_may": round(float(generated @ may), 3)
        if may is not None and generated is not None
        else None,
        "embed_s_per_speech_s": round(voices.seconds / max(voices.speech_s, 1e-9), 4),
        "speakers": {
            "speech_emotion": len({s for s, _, _ in speech}),
            "videos": len({s for s, _, _ in videos}),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    out = evaluate()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
