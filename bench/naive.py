"""The naive baseline: the sequential script a data engineer writes first, timed end to end.

Every frame of every file is read with OpenCV and given to MediaPipe Face Landmarker in IMAGE
mode, then faster-whisper transcribes the whole file. No sampling, no batching, no parallelism
beyond what the libraries do on their own.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np
from faster_whisper import WhisperModel
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode


def naive_seconds(videos: list[Path], face_model: Path, whisper_dir: Path) -> float:
    """Wall seconds to process ``videos`` one after the other, model loading included.

    ``face_model`` is ``face_landmarker.task``; ``whisper_dir`` a CTranslate2 faster-whisper model
    folder. A file without an audio stream is landmarked and its transcription skipped.
    """
    started = time.perf_counter()
    options = FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(face_model)),
        running_mode=RunningMode.IMAGE,
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    whisper = WhisperModel(str(whisper_dir), device="cpu", compute_type="int8")
    with FaceLandmarker.create_from_options(options) as landmarker:
        for video in videos:
            capture = cv2.VideoCapture(str(video))
            try:
                while True:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    landmarker.detect(
                        mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
                    )
            finally:
                capture.release()
            try:
                segments, _ = whisper.transcribe(str(video), word_timestamps=True, beam_size=1)
                for _ in segments:
                    pass
            except (IndexError, av.FFmpegError):  # no audio stream: faster-whisper finds nothing to decode
                continue
    return time.perf_counter() - started
