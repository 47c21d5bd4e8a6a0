"""The voice descriptor (:mod:`extractors.identity.voice`): its mel input and partials by hand,
and the real Resemblyzer weights on fixture speech (fixtures README: vr_face_3 and
sadtalker_WDA_AOC_000 are one speaker, AOC, with the same recording; vr_face_5, r3p_May_5s,
vr_face_1 and lp_driving_d20 are four others; geneface_zozo_radnerf shows May's face with
another voice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors.identity.voice import (
    _hz_to_mel,
    _mel_to_hz,
    mel_bank,
    mel_power,
    partial_starts,
)


def test_the_mel_scale_is_slaneys() -> None:
    assert float(_hz_to_mel(np.array(1000.0))) == pytest.approx(15.0)  # linear up to 1 kHz ...
    assert float(_hz_to_mel(np.array(500.0))) == pytest.approx(7.5)
    assert float(_hz_to_mel(np.array(6400.0))) == pytest.approx(42.0)  # ... 27 mels per factor 6.4 above
    hz = np.array([0.0, 300.0, 1000.0, 4000.0, 8000.0])
    assert _mel_to_hz(_hz_to_mel(hz)) == pytest.approx(hz)


def test_mel_filters_are_equal_area_triangles() -> None:
    bank = mel_bank()
    assert bank.shape == (40, 201) and (bank >= 0).all()
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 150
    # Slaney's normalisation: height 2 / (width in Hz), so each triangle's area is 1 Hz-weighted;
    # on the 40 Hz bin grid the sum of a wide (upper) filter is 1 / 40 Hz.
    assert bank[-5:].sum(axis=1) * 40.0 == pytest.approx(np.ones(5), rel=0.05)


def test_mel_power_frames_and_a_tone_lands_in_its_band() -> None:
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = mel_power(tone)
    assert mel.shape == (101, 40) and mel.dtype == np.float32  # 1 + 16000 // 160 frames
    band = int(mel[50].argmax())
    centres = _mel_to_hz(np.linspace(0, _hz_to_mel(np.array(8000.0)), 42))[1:-1]
    assert abs(centres[band] - 1000) < 80


def test_partials_cover_the_speech() -> None:
    assert partial_starts(16000) == [0]  # under 1.6 s: one partial, padded
    # 3.2 s: 321 frames, a partial every 77 (1.3 a second); the last, 56% speech, is dropped
    assert partial_starts(51200) == [0, 77, 154]
    assert partial_starts(16000 * 30)[-1] * 160 + 160 * 160 >= 16000 * 30 * 0.75


@pytest.fixture(scope="module")
def voice_of(fixtures: Path):  # type: ignore[no-untyped-def]
    """``voice_of("name.mp4", part)``: the voice descriptor of a fixture video's speech, whole
    (part None) or its first or second half (0, 1)."""
    from extractors.identity.voice import VOICE_EMBEDDING, VoiceEmbedder
    from extractors.speech.window import joined_speech, speech_spans
    from ingest.media import read_audio
    from settings.models import cache_dir, resolve

    # No skip: scripts/setup.sh fetches the model, so a missing one is a failure.
    embedder = VoiceEmbedder(resolve(VOICE_EMBEDDING, {}, cache_dir(None)))

    def voice(name: str, part: int | None = None) -> np.ndarray:
        audio = read_audio(fixtures / "video" / name)
        speech = joined_speech(audio, speech_spans(audio))
        if part is not None:
            half = len(speech) // 2
            speech = speech[half * part : half * (part + 1)]
        return embedder.embed(speech)

    return voice


@pytest.mark.slow
def test_one_voice_matches_itself_and_other_voices_do_not(voice_of) -> None:  # type: ignore[no-untyped-def]
    aoc = voice_of("vr_face_3.mp4")
    assert aoc.shape == (256,) and np.linalg.norm(aoc) == pytest.approx(1.0) and (aoc >= 0).all()
    assert aoc @ voice_of("sadtalker_WDA_AOC_000.mp4") > 0.9  # the same recording, another cut
    assert voice_of("vr_face_3.mp4", 0) @ voice_of("vr_face_3.mp4", 1) > 0.8  # 2.5 s halves
    for other in ("vr_face_5.mp4", "r3p_May_5s.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4"):
        assert aoc @ voice_of(other) < 0.75, other
    # May's face generated to another voice: the voice is not hers
    assert voice_of("geneface_zozo_radnerf.mp4") @ voice_of("r3p_May_5s.mp4") < 0.6
