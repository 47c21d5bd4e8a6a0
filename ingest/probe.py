"""Container facts of one video, read by demuxing its packets (no decoding).

Walking the packets costs milliseconds a minute of video and gives what container headers may
lack or misstate: the real duration (some WebM files declare none), the frame count, the
average rate and whether frame intervals vary, and whether the file ends early (truncated).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from ingest.media import audio_stream, decoded_frames
from manifests.schema import error_text

VIDEO_ID_HEX = 20
#: Tolerance on frame intervals and on average vs nominal rate before a video counts as VFR.
VFR_TOLERANCE = 0.05


class ProbeFailure(Exception):
    """The file cannot be used at all; ``code`` is a reason from ``FAILURE_REASONS``."""

    def __init__(self, code: str, detail: str):
        super().__init__(error_text(code, detail))
        self.code = code


def content_id(path: Path) -> str:
    """Identity of a file's bytes: the first hex digits of its sha256."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:VIDEO_ID_HEX]


def uri_id(uri: str) -> str:
    """Identity of an input that could not be read, from its URI."""
    return "uri-" + hashlib.sha256(uri.encode()).hexdigest()[: VIDEO_ID_HEX - 4]


@dataclass
class ProbeResult:
    """Facts for the ``videos`` table (columns of the same names) and non-fatal failures."""

    facts: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)


def _is_vfr(pts_s: np.ndarray, fps_nominal: float | None, fps_avg: float | None) -> bool:
    if len(pts_s) < 3:
        return False
    deltas = np.diff(np.sort(pts_s))
    deltas = deltas[deltas > 0]
    if not len(deltas):
        return False
    median = float(np.median(deltas))
    irregular = float(np.mean(np.abs(deltas - median) > VFR_TOLERANCE * median))
    off_nominal = bool(fps_nominal and fps_avg and abs(fps_avg - fps_nominal) > VFR_TOLERANCE * fps_nominal)
    return irregular > VFR_TOLERANCE or off_nominal


def _display_rotation(path: Path) -> int:
    """Degrees counter-clockwise the display matrix turns the video (0, 90, 180 or 270), from
    the first frame that decodes."""
    with av.open(str(path)) as container:
        frame = next(decoded_frames(container, container.streams.video[0]), None)
    return round((frame.rotation if frame is not None else 0) / 90) % 4 * 90


def probe(path: Path) -> ProbeResult:
    """Demux ``path`` and return its container facts.

    Raises :class:`ProbeFailure` when the file is missing, empty, not media, has no video
    stream or is truncated. A missing audio stream is recorded in ``errors`` instead, because
    the video still has facts worth keeping.
    """
    if not path.exists():
        raise ProbeFailure("missing_file", f"{path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise ProbeFailure("empty_file", f"{path} has zero bytes")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ProbeFailure("unreadable", f"{path.name}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise ProbeFailure("no_video_stream", f"{path.name} has no video stream")
        vstream = container.streams.video[0]
        astream = audio_stream(container) if container.streams.audio else None
        video_pts: list[float] = []
        ends: list[float] = []
        demux_error = None
        try:
            for packet in container.demux(*([vstream] + ([astream] if astream else []))):
                if packet.pts is None or packet.time_base is None:
                    continue
                start = float(packet.pts * packet.time_base)
                ends.append(start + float((packet.duration or 0) * packet.time_base))
                if packet.stream is vstream:
                    video_pts.append(start)
        except av.error.FFmpegError as exc:
            demux_error = str(exc)
        container_duration = container.duration / av.time_base if container.duration else None
        first = min(video_pts) if video_pts else 0.0
        duration = (max(ends) - first) if ends else None
        n_frames = len(video_pts)
        video_span = (max(video_pts) - first) if n_frames > 1 else None
        fps_avg = (n_frames - 1) / video_span if video_span else None
        fps_nominal = float(vstream.average_rate or vstream.guessed_rate or 0) or None
        if vstream.base_rate and fps_nominal and float(vstream.base_rate) > fps_nominal:
            fps_nominal = float(vstream.base_rate)  # the declared rate, not the measured average
        facts: dict[str, Any] = {
            "size_bytes": size,
            "duration_s": duration,
            "container_duration_s": container_duration,
            "fps_nominal": fps_nominal,
            "fps_avg": fps_avg,
            "vfr": _is_vfr(np.asarray(video_pts), fps_nominal, fps_avg),
            "n_frames": n_frames,
            "width": vstream.codec_context.width,
            "height": vstream.codec_context.height,
            "rotation_deg": 0,
            "audio_stream": astream.index if astream else None,
            "audio_streams": len(container.streams.audio),
            "video_codec": vstream.codec_context.name,
            "has_audio": astream is not None,
            "audio_codec": astream.codec_context.name if astream else None,
            "audio_sr_hz": astream.codec_context.sample_rate if astream else None,
            "audio_channels": astream.codec_context.channels if astream else None,
        }
    if n_frames == 0:
        raise ProbeFailure(
            "truncated", f"{path.name}: no video frames could be demuxed ({demux_error or 'empty'})"
        )
    if n_frames == 1 and not demux_error:
        raise ProbeFailure(
            "unreadable", f"{path.name} is a still image (one {facts['video_codec']} frame), not a video"
        )
    declared = container_duration
    if demux_error or (declared and duration is not None and duration < declared - max(0.5, 0.1 * declared)):
        raise ProbeFailure(
            "truncated",
            f"{path.name}: packets end at {duration or 0:.2f} s of a declared {declared or 0:.2f} s"
            + (f" ({demux_error})" if demux_error else ""),
        )
    facts["rotation_deg"] = _display_rotation(path)
    if facts["rotation_deg"] % 180:  # shown on its side: width and height as displayed
        facts["width"], facts["height"] = facts["height"], facts["width"]
    result = ProbeResult(facts)
    if astream is None:
        result.errors["probe"] = error_text("no_audio", f"{path.name} has no audio stream")
    return result
