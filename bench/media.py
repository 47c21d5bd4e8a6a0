"""Benchmark inputs made from fixture videos by remuxing packets with PyAV, never re-encoding.

:func:`distinct_copy` gives the same media under different bytes (a new sha256), so that a
content-hash deduplication does not fold copies together; :func:`delayed_audio_copy` puts the
audio out of sync by a known delay (tests use it too); :func:`damaged_copy` overwrites a
stretch of one stream's packets with random bytes (a fault for tests); :func:`sideways_copy`
stores the frames on their side with a display matrix, as phones do, and :func:`mirrored_copy`
flips them left to right (the two re-encodes);
:func:`second_audio_copy` adds a first, non-default audio stream; :func:`concatenate` repeats a clip back
to back into a long mp4. Both verify their output by decoding it and raise :class:`MediaCheckError`
when it does not match the source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.stream

_MEDIA_TYPES = ("video", "audio")
_DURATION_TOLERANCE_S = 0.1
_LAST_STRETCH_S = 60.0


class MediaCheckError(RuntimeError):
    """A written file does not decode, or its duration does not match what was expected."""


@dataclass(frozen=True)
class _Extent:
    """The timestamps one stream's packets cover, in the stream's time base (ticks).

    ``pts_end`` is the largest pts + duration; ``dts_first``/``dts_last`` the first and last dts.
    Packets flagged as discard (encoder priming before an edit list) are left out.
    """

    pts_start: int
    pts_end: int
    dts_first: int
    dts_last: int


def duration_s(path: Path) -> float:
    """Duration of a media file in seconds: the container's, else the longest stream's packets."""
    with av.open(str(path)) as container:
        if container.duration is not None:
            return container.duration / av.time_base
        return max(
            float((extent.pts_end - extent.pts_start) * tb) for extent, tb in _extents(container).values()
        )


def distinct_copy(src: Path, dst: Path, tag: str) -> Path:
    """Remux the video and audio streams of ``src`` into ``dst`` with a ``comment=tag`` container tag.

    The media (packets, timestamps) are those of ``src``; only the container bytes differ, so the
    sha256 differs for distinct tags. ``dst`` must have the suffix of ``src`` (the muxer is chosen
    by suffix). The copy is checked to decode and to last as long as ``src`` (within 0.1 s).
    Returns ``dst``.
    """
    if dst.suffix.lower() != src.suffix.lower():
        raise ValueError(f"{dst} must have the suffix of {src} ({src.suffix})")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        target.metadata.update(source.metadata)
        target.metadata["comment"] = tag
        outputs = _template_streams(source, target)
        for packet in source.demux(*(stream for stream in source.streams if stream.index in outputs)):
            if packet.dts is None:  # the empty packet that ends each stream
                continue
            packet.stream = outputs[packet.stream.index]
            target.mux(packet)
    expected = duration_s(src)
    _check(dst, expected, _DURATION_TOLERANCE_S)
    return dst


def delayed_audio_copy(src: Path, dst: Path, delay_s: float) -> Path:
    """Remux ``src`` into ``dst`` with every audio packet ``delay_s`` seconds later (as
    ``ffmpeg -itsoffset`` makes an out-of-sync negative); the video is untouched. Returns ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        outputs = _template_streams(source, target)
        for packet in source.demux(*(stream for stream in source.streams if stream.index in outputs)):
            if packet.dts is None:
                continue
            if packet.stream.type == "audio":
                ticks = round(delay_s / packet.time_base)
                packet.pts, packet.dts = packet.pts + ticks, packet.dts + ticks
            packet.stream = outputs[packet.stream.index]
            target.mux(packet)
    _check(dst, duration_s(src), _DURATION_TOLERANCE_S + abs(delay_s))
    return dst


def damaged_copy(src: Path, dst: Path, kind: str, start_s: float, end_s: float, seed: int = 0) -> Path:
    """A byte copy of ``src`` whose ``kind`` ("audio" or "video") packets with a timestamp in
    [start_s, end_s) are overwritten in place with random bytes (the container stays valid: the
    damage is inside the stream, as on a bad disk or a broken download). Returns ``dst``."""
    import numpy as np

    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        for packet in container.demux(stream):
            t = float(packet.pts * stream.time_base) if packet.pts is not None else -1.0
            if start_s <= t < end_s and packet.pos is not None and packet.size:
                data[packet.pos : packet.pos + packet.size] = rng.integers(
                    0, 256, packet.size, np.uint8
                ).tobytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return dst


def _reencoded_copy(src: Path, dst: Path, turn: Callable[[Any], Any], rotation: int | None, crf: str) -> Path:
    """``src`` with every frame passed through ``turn`` (an RGB array in, one out) and encoded
    with H.264 at ``crf``; a display matrix of ``rotation`` degrees when given; audio remuxed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        vin = source.streams.video[0]
        ain = source.streams.audio[0]
        vout = target.add_stream("libx264", rate=vin.average_rate)
        probe = turn(next(source.decode(vin)).to_ndarray(format="rgb24"))
        vout.height, vout.width = probe.shape[:2]
        vout.pix_fmt = "yuv420p"
        vout.options = {"crf": crf, "preset": "veryfast"}
        if rotation is not None:
            vout.set_display_rotation(rotation)
        aout = target.add_stream_from_template(ain)
        source.seek(0)
        for packet in source.demux(vin, ain):
            if packet.dts is None:
                continue
            if packet.stream is ain:
                packet.stream = aout
                target.mux(packet)
                continue
            for frame in packet.decode():
                out = av.VideoFrame.from_ndarray(turn(frame.to_ndarray(format="rgb24")), format="rgb24")
                out.pts, out.time_base = frame.pts, frame.time_base
                target.mux(vout.encode(out))
        target.mux(vout.encode(None))
    return dst


def sideways_copy(src: Path, dst: Path) -> Path:
    """``src`` as a phone stores portrait video: frames encoded turned 90° clockwise (H.264, a
    re-encode) with a display matrix that turns them back 90° counter-clockwise when shown; the
    audio is remuxed. Returns ``dst``."""
    import numpy as np

    return _reencoded_copy(src, dst, lambda rgb: np.ascontiguousarray(np.rot90(rgb, -1)), 90, "18")


def mirrored_copy(src: Path, dst: Path) -> Path:
    """``src`` flipped left to right (H.264 at near-lossless quality); the audio is remuxed."""
    import numpy as np

    return _reencoded_copy(src, dst, lambda rgb: np.ascontiguousarray(rgb[:, ::-1]), None, "4")


def recompressed_copy(src: Path, dst: Path, crf: str = "35") -> Path:
    """``src`` at half its size and H.264 ``crf`` (a lossy re-upload); the audio is remuxed."""
    import cv2

    def half(rgb: Any) -> Any:
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, (w // 4 * 2, h // 4 * 2), interpolation=cv2.INTER_AREA)

    return _reencoded_copy(src, dst, half, None, crf)


def second_audio_copy(src: Path, silent: Path, dst: Path, mark_default: bool = True) -> Path:
    """``src`` with the audio of ``silent`` (cut to ``src``'s length) added as its first audio
    stream and its own audio second, marked as the default one (a player picks it) unless
    ``mark_default`` is false (then no stream is marked). Returns ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as source, av.open(str(silent)) as other, av.open(str(dst), "w") as target:
        vout = target.add_stream_from_template(source.streams.video[0])
        first = target.add_stream_from_template(other.streams.audio[0])
        second = target.add_stream_from_template(source.streams.audio[0])
        first.disposition = av.stream.Disposition(0)
        second.disposition = av.stream.Disposition.default if mark_default else av.stream.Disposition(0)
        packets = [
            (p, vout if p.stream.type == "video" else second) for p in source.demux() if p.dts is not None
        ]
        end_s = max(float(p.dts * p.time_base) for p, _ in packets)
        packets += [
            (p, first)
            for p in other.demux(other.streams.audio[0])
            if p.dts is not None and float(p.dts * p.time_base) <= end_s
        ]
        packets.sort(key=lambda pair: float(pair[0].dts * pair[0].time_base))
        for packet, stream in packets:
            packet.stream = stream
            target.mux(packet)
    return dst


def stream_copy(
    src: Path, dst: Path, kinds: tuple[str, ...] = ("video", "audio"), end_s: float | None = None
) -> Path:
    """Remux only the ``kinds`` streams of ``src`` into ``dst`` (the container chosen by
    ``dst``'s suffix), and only packets before ``end_s`` when given. Returns ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        outputs = {s.index: target.add_stream_from_template(s) for s in source.streams if s.type in kinds}
        for packet in source.demux(*(s for s in source.streams if s.index in outputs)):
            if packet.dts is None or packet.time_base is None:
                continue
            if end_s is not None and float(packet.dts * packet.time_base) >= end_s:
                continue
            packet.stream = outputs[packet.stream.index]
            target.mux(packet)
    return dst


def synthetic_video(dst: Path, width: int, height: int, seconds: float, fps: int = 25) -> Path:
    """A video-only H.264 file of moving gray noise at ``width`` x ``height`` (extreme sizes for tests)."""
    import numpy as np

    rng = np.random.default_rng(0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), "w") as target:
        stream = target.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            image = rng.integers(0, 256, (height, width, 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            target.mux(stream.encode(frame))
        target.mux(stream.encode(None))
    return dst


def concatenate(src: Path, dst: Path, min_duration_s: float) -> Path:
    """Write an mp4 ``dst`` that plays ``src`` back to back until it lasts at least ``min_duration_s`` s.

    Packets are copied with pts/dts shifted by a running offset: every repetition advances each
    stream by the same span, the longest stream's span in ``src`` (seconds, converted to each
    stream's time base and rounded up), so audio and video stay in sync over any number of
    repetitions; the shorter stream gets a gap under one tick per repetition. Each stream's offset
    is also at least its own pts and dts span, so dts stay strictly increasing per stream. Encoder
    priming packets (flagged discard) are kept only in the first repetition. The result is checked
    to last about n × the span (within 0.1 s plus one tick per repetition) and to decode video
    within its last minute. Returns ``dst``.
    """
    if min_duration_s <= 0:
        raise ValueError(f"min_duration_s must be positive, got {min_duration_s}")
    with av.open(str(src)) as source:
        extents = _extents(source)
    if not extents:
        raise ValueError(f"{src} has no video or audio packets")
    span_s = max((extent.pts_end - extent.pts_start) * tb for extent, tb in extents.values())
    offsets = {
        index: max(
            math.ceil(span_s / tb),
            extent.pts_end - extent.pts_start,
            extent.dts_last - extent.dts_first + 1,
        )
        for index, (extent, tb) in extents.items()
    }
    repetitions = math.ceil(min_duration_s / float(span_s))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), "w", format="mp4") as target:
        outputs: dict[int, av.stream.Stream] = {}
        for repetition in range(repetitions):
            with av.open(str(src)) as source:
                if not outputs:
                    outputs = _template_streams(source, target)
                for packet in source.demux(*(source.streams[index] for index in outputs)):
                    if packet.dts is None or (repetition and packet.is_discard):
                        continue
                    shift = repetition * offsets[packet.stream.index]
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                    packet.stream = outputs[packet.stream.index]
                    target.mux(packet)
    tick_s = max(float(tb) for _, tb in extents.values())
    _check(dst, repetitions * float(span_s), _DURATION_TOLERANCE_S + repetitions * tick_s)
    return dst


def _template_streams(
    source: av.container.InputContainer, target: av.container.OutputContainer
) -> dict[int, av.stream.Stream]:
    """Add to ``target`` a copy of each video and audio stream of ``source``, keyed by source index."""
    outputs = {
        stream.index: target.add_stream_from_template(stream)
        for stream in source.streams
        if stream.type in _MEDIA_TYPES
    }
    if not outputs:
        raise ValueError(f"{source.name} has no video or audio stream")
    return outputs


def _extents(container: av.container.InputContainer) -> dict[int, tuple[_Extent, Fraction]]:
    """Demux every packet; the extent and time base (s/tick) of each video and audio stream."""
    found: dict[int, tuple[_Extent, Fraction]] = {}
    streams = [stream for stream in container.streams if stream.type in _MEDIA_TYPES]
    for packet in container.demux(*streams):
        if packet.dts is None or packet.is_discard:
            continue
        pts = packet.pts if packet.pts is not None else packet.dts
        end = pts + (packet.duration or 0)
        index = packet.stream.index
        if index not in found:
            time_base = packet.time_base
            if time_base is None:
                raise ValueError(f"stream {index} of {container.name} has no time base")
            found[index] = (_Extent(pts, end, packet.dts, packet.dts), time_base)
            continue
        extent, time_base = found[index]
        found[index] = (
            _Extent(min(extent.pts_start, pts), max(extent.pts_end, end), extent.dts_first, packet.dts),
            time_base,
        )
    return found


def _check(path: Path, expected_s: float, tolerance_s: float) -> None:
    """Raise :class:`MediaCheckError` unless ``path`` lasts ``expected_s`` ± ``tolerance_s`` seconds,
    its first video and audio frames decode, and video decodes again after a seek into its last
    minute, up to a frame at or after the seek target."""
    actual_s = duration_s(path)
    if abs(actual_s - expected_s) > tolerance_s:
        raise MediaCheckError(f"{path} lasts {actual_s:.3f} s, expected {expected_s:.3f} s")
    with av.open(str(path)) as container:
        for stream in container.streams:
            if stream.type in _MEDIA_TYPES and next(container.decode(stream), None) is None:
                raise MediaCheckError(f"{path}: stream {stream.index} ({stream.type}) does not decode")
        if not container.streams.video:
            return
        video = container.streams.video[0]
        if video.time_base is None:
            raise MediaCheckError(f"{path}: video stream has no time base")
        target_s = max(0.0, actual_s - _LAST_STRETCH_S)
        container.seek(int(target_s / video.time_base), stream=video)
        for frame in container.decode(video):
            if frame.time is not None and frame.time >= target_s:
                return
    raise MediaCheckError(f"{path}: no video frame decodes after {target_s:.3f} s")
