"""Decoding with PyAV: audio at 16 kHz mono, and video frames sampled by time.

Nothing here re-encodes. Video frames are sampled on a constant-rate grid by their decoder
timestamps, so a variable-frame-rate source yields evenly spaced output frames (each the
latest source frame shown at that instant).
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import numpy as np

SPEECH_SR_HZ = 16_000
ENVELOPE_HOP_S = 0.01


def _seek(container: av.container.InputContainer, stream: av.stream.Stream, start_s: float) -> None:
    """Seek to the keyframe at or before ``start_s`` (decoding then runs up to it)."""
    if start_s > 0 and stream.time_base is not None:
        container.seek(int(start_s / stream.time_base), stream=stream, backward=True)


def read_audio(path: Path, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Mono float32 samples at 16 kHz in [start_s, end_s), shape (n,)."""
    chunks = list(iter_audio(path, start_s, end_s))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


#: Peak level (dBFS) under which a stream's opening seconds are digital silence.
_SILENT_DB = -60.0


@lru_cache(maxsize=256)
def _sounds(path: str, index: int, version: tuple[int, int], seconds: float = 5.0) -> bool:
    """Whether audio stream ``index`` of ``path`` rises above digital silence in its first seconds
    (``version``: the file's size and mtime, so that each read of the file does not decode again)."""
    with av.open(path) as container:
        stream = container.streams[index]
        for frame in decoded_frames(container, stream):
            if float(np.abs(frame.to_ndarray()).max(initial=0.0)) > 10 ** (_SILENT_DB / 20):
                return True
            if (frame.time or 0.0) > seconds:
                break
    return False


def audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    """The audio stream to use: the one marked default; else, of several, the first that is not
    digital silence in its opening seconds; else the first (IndexError when there is none)."""
    streams = list(container.streams.audio)
    marked = [s for s in streams if s.disposition & av.stream.Disposition.default]
    if marked or len(streams) < 2:
        return (marked or streams)[0]
    info = Path(container.name).stat()
    version = (info.st_size, info.st_mtime_ns)
    return next((s for s in streams if _sounds(container.name, s.index, version)), streams[0])


def upright(image: np.ndarray, rotation_deg: float) -> np.ndarray:
    """A decoded image turned as its display matrix says to show it (``rotation_deg``
    counter-clockwise, a multiple of 90), C-contiguous."""
    turns = round(rotation_deg / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def is_decode_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the decoder or demuxer (damaged or unsupported data)."""
    return isinstance(exc, av.error.FFmpegError)


#: Where damaged packets were skipped: (stream type, start_s, end_s) per packet.
Damage = list[tuple[str, float, float]]


def decoded_frames(
    container: av.container.InputContainer, stream: av.stream.Stream, damage: Damage | None = None
) -> Iterator[Any]:
    """The stream's decoded frames; a packet the decoder rejects as damaged
    (``av.error.InvalidDataError``) is skipped, so the rest of the stream still decodes, and its
    span is appended to ``damage`` when given."""
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            if damage is not None and packet.pts is not None and packet.time_base is not None:
                start = float(packet.pts * packet.time_base)
                damage.append((stream.type, start, start + float((packet.duration or 0) * packet.time_base)))
            continue
        yield from frames


def damaged_spans(damage: Damage, gap_s: float = 0.1) -> list[dict[str, Any]]:
    """Damaged packets merged into spans (packets closer than ``gap_s`` join), as
    ``{"stream", "start_s", "end_s"}`` rows sorted by stream and time."""
    spans: list[dict[str, Any]] = []
    for kind, start, end in sorted(damage):
        last = spans[-1] if spans else None
        if last and last["stream"] == kind and start <= last["end_s"] + gap_s:
            last["end_s"] = max(last["end_s"], end)
        else:
            spans.append({"stream": kind, "start_s": start, "end_s": end})
    return spans


#: A jump in audio frame times larger than this (samples at 16 kHz) is a gap (a skipped damaged
#: packet), filled with silence so that later samples keep their time.
_AUDIO_GAP = SPEECH_SR_HZ // 50


def iter_audio(
    path: Path, start_s: float = 0.0, end_s: float | None = None, damage: Damage | None = None
) -> Iterator[np.ndarray]:
    """Mono float32 chunks at 16 kHz covering [start_s, end_s), streamed from the decoder.

    Damaged packets are skipped (and listed in ``damage``) and their span filled with silence.
    """
    with av.open(str(path)) as container:
        stream = audio_stream(container)
        _seek(container, stream, start_s)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SPEECH_SR_HZ)
        first = round(start_s * SPEECH_SR_HZ)
        last = None if end_s is None else round(end_s * SPEECH_SR_HZ)

        def clipped(samples: np.ndarray, at: int) -> np.ndarray:
            lo, hi = max(first - at, 0), len(samples) if last is None else min(last - at, len(samples))
            return samples[lo:hi] if hi > lo else samples[:0]

        pos: int | None = None  # index of the next resampled sample in source time
        for frame in decoded_frames(container, stream, damage):
            at = round((frame.time or 0.0) * SPEECH_SR_HZ)
            # Silence before a track that starts after start_s, and where damaged packets were.
            allowed = 0 if pos is None else _AUDIO_GAP
            pos = min(first, at) if pos is None else pos
            if at - pos > allowed:
                yield clipped(np.zeros(at - pos, np.float32), pos)
                pos = at
            for out in resampler.resample(frame):
                samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                chunk = clipped(samples, pos)
                pos += len(samples)
                if len(chunk):
                    yield chunk
            if last is not None and pos >= last:
                return


def energy_envelope_db(path: Path, hop_s: float = ENVELOPE_HOP_S, damage: Damage | None = None) -> np.ndarray:
    """RMS level in dBFS of consecutive ``hop_s`` windows of the whole audio track, shape (n_hops,).

    Streams the track, so memory holds only the envelope (100 values a second by default).
    """
    hop = round(hop_s * SPEECH_SR_HZ)
    levels: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)
    for chunk in iter_audio(path, damage=damage):
        buf = np.concatenate([carry, chunk])
        n = len(buf) // hop
        if n:
            frames = buf[: n * hop].reshape(n, hop).astype(np.float64)
            levels.append(10 * np.log10(np.mean(frames**2, axis=1) + 1e-12))
        carry = buf[n * hop :]
    return np.concatenate(levels) if levels else np.zeros(0)


@dataclass(frozen=True)
class SampledFrame:
    """One output frame: ``t_s`` on the constant-rate grid, ``src_pts_s`` of the source frame shown then."""

    index: int  # position on the grid
    t_s: float
    src_pts_s: float
    image: np.ndarray  # (H, W, 3) uint8 RGB or (H, W) uint8 gray, C-contiguous
    repeated: bool  # same source frame as the previous output frame


def frame_grid(start_s: float, end_s: float, fps: float) -> np.ndarray:
    """Output times ``start_s + k / fps`` for k = 0.. while below ``end_s``; shape (n,)."""
    n = max(int(np.floor((end_s - start_s) * fps - 1e-6)) + 1, 0)
    return start_s + np.arange(n) / fps


def iter_frames_at_rate(
    path: Path,
    start_s: float,
    end_s: float,
    fps: float,
    fmt: str = "rgb24",
    size: tuple[int, int] | None = None,
    only: Container[int] | None = None,
    damage: Damage | None = None,
) -> Iterator[SampledFrame]:
    """Decode [start_s, end_s) once and yield frames on the grid :func:`frame_grid`, turned
    upright as the stream's display matrix says (phone video).

    A grid time takes the latest source frame whose timestamp is at or before it (sample and
    hold), so output frames stay evenly spaced whatever the source's frame timing. ``size`` is
    (width, height) to scale to in the decoder's converter; ``only``: the grid indices to yield
    (the others are decoded but never converted); ``damage`` lists the damaged packets skipped.
    """
    grid = frame_grid(start_s, end_s, fps)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        _seek(container, stream, start_s)
        k = 0
        held: av.VideoFrame | None = None
        held_image: np.ndarray | None = None
        last_pts: float | None = None

        def emit(k: int) -> SampledFrame:
            nonlocal held_image, last_pts
            assert held is not None and held.time is not None
            if held_image is None:  # convert only frames that some grid time shows
                turned = size and round(held.rotation / 90) % 2  # scale to the size as shown
                width, height = (size[1], size[0]) if turned and size else (size or (None, None))
                converted = held.reformat(width=width, height=height, format=fmt) if size else held
                held_image = upright(np.ascontiguousarray(converted.to_ndarray(format=fmt)), held.rotation)
            pts = float(held.time)
            out = SampledFrame(k, float(grid[k]), pts, held_image, repeated=last_pts == pts)
            last_pts = pts
            return out

        for frame in decoded_frames(container, stream, damage):
            if k >= len(grid):
                break
            if frame.time is None:
                continue
            pts = float(frame.time)
            if held is None and pts > start_s + 1e-6:
                held = frame  # grid times before the first decoded frame show that frame
            # Every grid time before this frame shows the frame held until now.
            while held is not None and k < len(grid) and grid[k] < pts - 1e-6:
                if only is None or k in only:
                    yield emit(k)
                k += 1
            held, held_image = frame, None
        # The last frame stays on screen until the end of the clip.
        while held is not None and k < len(grid):
            if only is None or k in only:
                yield emit(k)
            k += 1
