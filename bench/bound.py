"""The isolated cost of the necessary work, in seconds of one core per second of video.

:func:`component_costs` pins the whole process to one core and times, separately, the three
things any implementation must do: decode every video frame to RGB, run Face Landmarker on the
frames resampled to a constant rate, and find and transcribe the speech. Dividing a core count
by the total gives an upper bound on seconds of video per wall second: the same work with none
of the pipeline's overheads (segmentation, scheduling, writing Parquet).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode

from bench.media import duration_s
from extractors.base import ClipRef
from extractors.speech import SpeechExtractor
from settings.config import Config


def component_costs(
    videos: list[Path], face_model: Path, config: Config, fps: float = 30.0, num_faces: int = 2
) -> dict[str, float]:
    """Seconds of one core per second of video for ``"decode"``, ``"landmarker"``, ``"speech"`` and
    ``"total"`` (their sum), summed over ``videos`` and divided by their summed duration (s).

    For the call, every thread of the process is pinned to one core (the lowest one it may use)
    and the previous affinities are restored at the end; run it on an otherwise idle machine, as
    the figures are wall seconds. decode: PyAV decoding of every video frame to an RGB array.
    landmarker: ``detect_for_video`` alone, VIDEO mode, one landmarker per video, on the frames
    sampled at ``fps`` (Hz) by timestamp, each sample taking the latest frame at or before it.
    speech: the pipeline's speech extractor on the whole video as one clip, with ``config``'s
    settings on one thread (audio decoding, VAD, language among the configured ones, greedy
    transcription with word timings); a video without audio costs nothing here.
    ``face_model`` is ``face_landmarker.task``;
    ``num_faces``: faces the landmarker tracks (the pipeline tracks 2 to count extra faces).
    """
    if not 0 < fps <= 1000:
        raise ValueError(f"fps must be in (0, 1000] for distinct millisecond timestamps, got {fps}")
    with pinned({min(os.sched_getaffinity(0))}):
        one_thread = config.speech.model_copy(update={"cpu_threads": 1, "device": "cpu"})
        speech = SpeechExtractor(config.model_copy(update={"speech": one_thread}))
        speech.setup()
        spent = {"decode": 0.0, "landmarker": 0.0, "speech": 0.0}
        media_s = 0.0
        for video in videos:
            media_s += duration_s(video)
            decode_s, landmarker_s = _video_costs(video, face_model, fps, num_faces)
            spent["decode"] += decode_s
            spent["landmarker"] += landmarker_s
            spent["speech"] += _speech_cost(video, speech)
    if media_s <= 0:
        raise ValueError("the videos have no duration")
    costs = {name: seconds / media_s for name, seconds in spent.items()}
    costs["total"] = sum(costs.values())
    return costs


def _video_costs(video: Path, face_model: Path, fps: float, num_faces: int) -> tuple[float, float]:
    """Wall seconds spent decoding ``video`` to RGB arrays, and in ``detect_for_video`` on it
    sampled at ``fps`` Hz (sample k at k / fps s, from 0 to the end of the last frame)."""
    options = FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(face_model)),
        running_mode=RunningMode.VIDEO,
        num_faces=num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    decode_s = landmarker_s = 0.0
    sample = 0
    held: mp.Image | None = None
    end_s = 0.0
    with av.open(str(video)) as container, FaceLandmarker.create_from_options(options) as landmarker:
        stream = container.streams.video[0]
        step_s = 1.0 / float(stream.average_rate or fps)
        frames = container.decode(stream)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                decode_s += time.perf_counter() - started
                break
            rgb = frame.to_ndarray(format="rgb24")
            decode_s += time.perf_counter() - started
            frame_s = frame.time if frame.time is not None else end_s
            if held is not None:
                sample, spent = _detect_until(landmarker, held, sample, frame_s, fps)
                landmarker_s += spent
            held = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            frame_duration_s = (
                float(frame.duration * frame.time_base) if frame.duration and frame.time_base else step_s
            )
            end_s = max(end_s, frame_s + frame_duration_s)
        if held is not None:
            landmarker_s += _detect_until(landmarker, held, sample, end_s, fps)[1]
    return decode_s, landmarker_s


def _detect_until(
    landmarker: FaceLandmarker, image: mp.Image, sample: int, until_s: float, fps: float
) -> tuple[int, float]:
    """Run ``detect_for_video`` on ``image`` for samples ``sample``, ``sample + 1``, ... while
    sample / fps < ``until_s`` (s); the next sample index and the wall seconds spent detecting."""
    spent = 0.0
    while sample / fps < until_s:
        timestamp_ms = round(sample * 1000 / fps)
        started = time.perf_counter()
        landmarker.detect_for_video(image, timestamp_ms)
        spent += time.perf_counter() - started
        sample += 1
    return sample, spent


def _speech_cost(video: Path, speech: SpeechExtractor) -> float:
    """Wall seconds the speech extractor takes on all of ``video`` as one clip (0 without audio)."""
    with av.open(str(video)) as container:
        if not container.streams.audio:
            return 0.0
    started = time.perf_counter()
    speech.extract(ClipRef(video, "bench", "bench", 0.0, duration_s(video), 30.0, has_audio=True), {})
    return time.perf_counter() - started


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Run the block with every thread of this process (and the processes it starts) on ``cpus``."""
    previous = _pin_process(cpus)
    try:
        yield
    finally:
        _restore(previous)


def _pin_process(cpus: set[int]) -> dict[int, set[int]]:
    """Pin every thread of this process to ``cpus``; the previous affinity of each, by thread id."""
    previous: dict[int, set[int]] = {}
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        try:
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return previous


def _restore(previous: dict[int, set[int]]) -> None:
    """Give each thread still alive the affinity it had before :func:`_pin_process`."""
    for tid, cpus in previous.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue
