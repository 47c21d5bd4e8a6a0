"""Review media: each clip cut from its video as a small H.264 + AAC mp4 a browser plays.

Cutting must start exactly at the clip (not at a keyframe), so the clip is re-encoded: at most
640 px wide, the clip's frame rate, about 1 Mbit/s. A file is written under a temporary name and
renamed, so a killed push never leaves a half file that a rerun would take as done.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ingest.media import SPEECH_SR_HZ, iter_frames_at_rate, read_audio

MAX_WIDTH = 640


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def cut_clip(
    source: Path, start_s: float, end_s: float, fps: float, out: Path, has_audio: bool = True
) -> Path:
    """Write [start_s, end_s) of ``source`` to ``out`` (mp4); an existing ``out`` is kept."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.mp4")
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "crf": "26"}
        audio_stream = container.add_stream("aac", rate=SPEECH_SR_HZ, layout="mono") if has_audio else None
        for i, frame in enumerate(iter_frames_at_rate(source, start_s, end_s, fps)):
            h, w = frame.image.shape[:2]
            if i == 0:
                scale = min(1.0, MAX_WIDTH / w)
                video.width, video.height = _even(w * scale), _even(h * scale)
            picture = av.VideoFrame.from_ndarray(frame.image, format="rgb24").reformat(
                video.width, video.height
            )
            picture.pts = i
            container.mux(video.encode(picture))
        container.mux(video.encode())
        if audio_stream is not None:
            _encode_audio(container, audio_stream, read_audio(source, start_s, end_s))
    tmp.replace(out)
    return out


def _encode_audio(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray
) -> None:
    """Encode 16 kHz mono float samples in 1024-sample frames."""
    for start in range(0, len(samples), 1024):
        chunk = np.ascontiguousarray(samples[start : start + 1024], np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = SPEECH_SR_HZ
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
