"""The voice cue of emotion: the speech window the speech extractor shares with it, the shipped
speech-emotion model on real speech, its fusion with the face side, and speaker-relative voice."""

from __future__ import annotations

import numpy as np
import pytest

from bench.media import duration_s
from extractors.base import ClipRef
from extractors.emotion.fusion import EMOTION_CLASSES
from extractors.emotion.speaker import relative_voice
from extractors.emotion.voice import fuse
from extractors.registry import make_config
from extractors.speech.window import SPEECH_WINDOW, SpeechWindow

ANGRY, NEUTRAL = EMOTION_CLASSES.index("angry"), EMOTION_CLASSES.index("neutral")


def _dist(top: int, p: float) -> np.ndarray:
    out = np.full(len(EMOTION_CLASSES), (1 - p) / (len(EMOTION_CLASSES) - 1))
    out[top] = p
    return out


def test_fusion_uses_the_cues_a_clip_has() -> None:
    face, voice = _dist(ANGRY, 0.6), _dist(NEUTRAL, 0.9)
    fused, cues = fuse(face, voice, 1.0, 1.0)
    assert cues == "face+voice" and fused is not None
    assert fused.sum() == pytest.approx(1.0) and fused.argmax() == NEUTRAL, "the surer cue wins"
    assert fused[ANGRY] < face[ANGRY]
    only_face, cues = fuse(face, None, 1.0, 1.0)
    assert cues == "face" and np.allclose(only_face, face)
    only_voice, cues = fuse(None, voice, 1.0, 1.0)
    assert cues == "voice" and np.allclose(only_voice, voice)
    assert fuse(None, None, 1.0, 1.0) == (None, None)
    muted, _ = fuse(face, voice, 1.0, 0.0)
    assert muted is not None and np.allclose(muted, face, atol=1e-6), "weight 0: the face side alone"


def test_a_speakers_habitual_voice_is_their_neutral() -> None:
    """A speaker whose every clip sounds angry to the model is judged against their own voice:
    their mean moves onto the model's reference, the order of their clips stays."""
    reference = np.log(_dist(NEUTRAL, 0.5))
    voices = np.array(
        [_dist(ANGRY, p) for p in (0.5, 0.6, 0.7, 0.8)] + [_dist(ANGRY, 0.8), np.full(7, np.nan)]
    )
    speakers = ["a", "a", "a", "a", None, "a"]
    out = relative_voice(voices, speakers, reference, shrink=0.0)
    mine = np.log(out[:4])
    assert np.allclose(mine.mean(axis=0) - mine.mean(axis=0).mean(), reference - reference.mean(), atol=1e-6)
    assert list(np.argsort(out[:4, ANGRY])) == [0, 1, 2, 3]
    assert np.allclose(out[4], voices[4]), "a clip of no speaker keeps its reading"
    assert np.isnan(out[5]).all(), "no reading stays no reading"
    assert out[:4, ANGRY].max() < 0.5, "none of the speaker's clips reads angry any more"


@pytest.mark.slow  # whisper-base and the speech-emotion model on real speech
def test_the_voice_cue_reads_the_window_the_speech_stage_encoded(video) -> None:  # type: ignore[no-untyped-def]
    """The speech extractor leaves its encoded window of speech; the voice cue reads it, and
    without the speech stage the cue encodes the same window itself and reads the same. The
    fixtures' calm speakers do not sound afraid or surprised; a clip without audio gets no voice."""
    from extractors.emotion.extractor import EmotionExtractor
    from extractors.speech.extractor import SpeechExtractor

    config = make_config()
    speech, emotion = SpeechExtractor(config), EmotionExtractor(config)
    speech.setup()
    emotion.setup()
    try:
        for name in ("vr_face_3.mp4", "r3p_May_5s.mp4"):
            path = video(name)
            shared = ClipRef(path, "v", "c", 0.0, duration_s(path), config.face.fps, True)
            assert speech.extract(shared, {}).failure is None
            window = shared.media.derived[SPEECH_WINDOW]
            assert isinstance(window, SpeechWindow)
            assert window.states.shape == (-(-len(window.audio) // 320), 512)
            assert 3.0 < len(window.audio) / 16000 <= duration_s(path), "the speech, not the whole clip"
            read, why = emotion.voice_probs(shared)
            alone, _ = emotion.voice_probs(
                ClipRef(path, "v", "c", 0.0, duration_s(path), config.face.fps, True)
            )
            assert why is None and read is not None and alone is not None
            assert read.sum() == pytest.approx(1.0, abs=1e-5)
            assert np.allclose(read, alone, atol=0.02), (name, read, alone)
            top = EMOTION_CLASSES[int(read.argmax())]
            assert top not in ("fear", "surprise"), (name, read)
        silent = video("iplap_129.mp4")  # no audio stream
        clip = ClipRef(silent, "v", "c", 0.0, duration_s(silent), config.face.fps, False)
        assert emotion.voice_probs(clip) == (None, "no audio")
        off = EmotionExtractor(make_config(emotion={"voice": False}))
        assert "speech-emotion" not in off.models() and "speech-emotion" in emotion.models()
    finally:
        speech.close()
        emotion.close()


@pytest.mark.slow  # whisper models and the speech-emotion model on real media
def test_a_window_not_shared_is_encoded_by_the_voice_cue_and_silence_is_not(video) -> None:  # type: ignore[no-untyped-def]
    """A speech stage that runs another model (here English-only whisper-tiny-en, which identifies
    no language) shares no window: the voice cue encodes the speech itself rather than reading
    "no speech". Digital silence is marked as no speech, and the cue does not look."""
    from extractors.emotion.extractor import EmotionExtractor
    from extractors.speech.extractor import SpeechExtractor

    config = make_config(speech={"model": "whisper-tiny-en"})
    speech, emotion = SpeechExtractor(config), EmotionExtractor(config)
    speech.setup()
    emotion.setup()
    try:
        path = video("vr_face_3.mp4")
        clip = ClipRef(path, "v", "c", 0.0, duration_s(path), config.face.fps, True)
        assert speech.extract(clip, {}).failure is None
        assert SPEECH_WINDOW not in clip.media.derived
        probs, why = emotion.voice_probs(clip)
        assert why is None and probs is not None and probs.sum() == pytest.approx(1.0, abs=1e-5)
        silent = video("lp_driving_d18.mp4")  # an audio track of digital silence
        quiet = ClipRef(silent, "v", "c", 0.0, duration_s(silent), config.face.fps, True)
        failure = speech.extract(quiet, {}).failure
        assert failure is not None and failure[0] == "no_speech"
        assert quiet.media.derived[SPEECH_WINDOW] is None
        assert emotion.voice_probs(quiet) == (None, "no speech")
    finally:
        speech.close()
        emotion.close()
