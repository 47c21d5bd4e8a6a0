"""Emotion labels and speakers read from the file names of acted-emotion corpora: MEAD
(``..._happy_...``, actor ``M003``), RAVDESS (``03-01-04-...``: the third field the class, the
last the actor) and CREMA-D (``1001_DFA_ANG_XX``). RAVDESS's calm counts as neutral; classes
outside the seven (MEAD's contempt) are None."""

from __future__ import annotations

import re
from pathlib import Path

WORDS = {
    "angry": "angry", "anger": "angry", "ang": "angry", "disgusted": "disgust", "disgust": "disgust",
    "dis": "disgust", "fear": "fear", "fearful": "fear", "fea": "fear", "happy": "happy", "hap": "happy",
    "happiness": "happy", "sad": "sad", "sadness": "sad", "surprised": "surprise", "surprise": "surprise",
    "sur": "surprise", "neutral": "neutral", "neu": "neutral", "calm": "neutral",
}  # fmt: skip
_RAVDESS = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
            "07": "disgust", "08": "surprise"}  # fmt: skip
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_CREMA_NAME = re.compile(r"^(\d{4})_[A-Z]{3}_([A-Z]{3})_[A-Z]{2}$")
_MEAD_SPEAKER = re.compile(r"(?:^|_)([MW]\d{3})(?:_|$)")


def label_from_name(name: str) -> tuple[str | None, str | None]:
    """(class, speaker) read from a file name (MEAD, RAVDESS or CREMA-D naming); None where absent."""
    stem = Path(name).stem
    if m := _RAVDESS_NAME.match(stem):
        return _RAVDESS.get(m.group(3)), f"ravdess_{m.group(7)}"
    if m := _CREMA_NAME.match(stem):
        return WORDS.get(m.group(2).lower()), f"crema_{m.group(1)}"
    speaker = m.group(1) if (m := _MEAD_SPEAKER.search(stem)) else None
    words = [WORDS[w] for w in re.split(r"[_\-\s.]+", stem.lower()) if w in WORDS]
    return (words[0] if words else None), (f"mead_{speaker}" if speaker else None)
