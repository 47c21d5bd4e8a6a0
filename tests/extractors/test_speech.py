"""Speech with the multilingual model: the language is identified on the window the transcription
encodes first, so a clip under 30 s costs one encoder pass, and the words are those of
faster-whisper's own language identification (fixture facts: vr_face_5 English, geneface German)."""

from __future__ import annotations

from bench.media import duration_s
from extractors.base import ClipRef
from extractors.registry import make_config
from extractors.speech.extractor import SpeechExtractor


def test_language_and_words_from_one_encoder_pass(video) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    assert config.speech.model == "whisper-base"  # multilingual: the language is identified
    speech = SpeechExtractor(config)
    speech.setup()
    try:
        for name, language, word in [
            ("vr_face_5.mp4", "en", "regulation"),
            ("geneface_zozo_radnerf.mp4", "de", ""),
        ]:
            path = video(name)
            clip = ClipRef(path, "v", "c", 0.0, duration_s(path), config.face.fps, True)
            before = speech.encoder.passes
            out = speech.extract(clip, {})
            assert speech.encoder.passes - before == 1, name  # not two: identification + first window
            assert out.failure is None and out.clip["speech_language"] == language, name
            assert out.clip["speech_language_prob"] > 0.9 and word in out.clip["speech_text"].lower()
            # faster-whisper's own identification over the clip's speech agrees.
            own, _, _ = speech._model.detect_language(clip.audio(), vad_filter=True)
            assert own == language
            # Transcribing in that language from scratch gives the same words.
            segments, _ = speech._model.transcribe(clip.audio(), language=language, word_timestamps=True,
                                                   vad_filter=True, condition_on_previous_text=False,
                                                   beam_size=config.speech.beam_size)  # fmt: skip
            assert [w.word.strip() for s in segments for w in s.words or []] == [
                w["word"] for w in out.track["words"]
            ]
    finally:
        speech.close()
