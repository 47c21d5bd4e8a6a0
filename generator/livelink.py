"""Animation files: Live Link Face CSV (as an iPhone capture writes it), JSON and NPY.

A Live Link Face CSV has ``Timecode``, ``BlendShapeCount``, the 52 ARKit blendshapes
(capitalised: ``EyeBlinkLeft``), then head and eye yaw/pitch/roll; one row per frame. Timecode
is ``HH:MM:SS:FF.fff`` with ``FF`` counted at :data:`TIMECODE_FPS` (a 30 fps capture steps by 2).
Channels the model does not predict (``TongueOut``, head and eyes) are written as 0.
"""

from __future__ import annotations

import io
import json
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from settings.errors import InvalidInput

#: The 52 ARKit blendshape columns of a Live Link Face CSV, in its order.
LLF_BLENDSHAPES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight",
    "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft",
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft",
    "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight", "MouthRollLower", "MouthRollUpper",
    "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft",
    "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight",
    "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)  # fmt: skip
#: Head and eye rotations that follow the blendshapes.
LLF_POSE: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
LLF_COLUMNS: tuple[str, ...] = ("Timecode", "BlendShapeCount", *LLF_BLENDSHAPES, *LLF_POSE)
TIMECODE_FPS = 60
FORMATS = ("csv", "json", "npy")


class UnknownFormat(InvalidInput, ValueError):
    """An animation format other than :data:`FORMATS`."""


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """The animation format: ``fmt``, else ``json`` or ``npy`` from ``path``'s suffix, else ``csv``."""
    suffix = Path(path).suffix.lower()
    chosen = fmt or (suffix.lstrip(".") if suffix in (".json", ".npy") else "csv")
    if chosen not in FORMATS:
        raise UnknownFormat(f"unknown format {chosen!r}: use one of {', '.join(FORMATS)}")
    return chosen


def to_llf_channels(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(n_frames, len(names)) -> (n_frames, 52) in :data:`LLF_BLENDSHAPES` order; names match
    case-insensitively, and a channel ``names`` lacks is 0. Unknown names are an error."""
    position = {n.lower(): i for i, n in enumerate(LLF_BLENDSHAPES)}
    unknown = [n for n in names if n.lower() not in position]
    if unknown:
        raise ValueError(f"channels without a Live Link Face column: {unknown}")
    out = np.zeros((len(values), len(LLF_BLENDSHAPES)))
    out[:, [position[n.lower()] for n in names]] = values
    return out


def timecode(t_s: float) -> str:
    """``HH:MM:SS:FF.fff`` of ``t_s`` seconds, frames counted at :data:`TIMECODE_FPS`."""
    frames = round(t_s * TIMECODE_FPS, 3)  # rounded first: never a frame field of 60.000
    seconds = math.floor(frames / TIMECODE_FPS)
    sub = frames - seconds * TIMECODE_FPS
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{sub:06.3f}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def llf_csv(values: np.ndarray, names: Sequence[str], fps: float) -> str:
    """The Live Link Face CSV text of (n_frames, len(names)) blendshapes at ``fps``, frame k at k / fps s."""
    channels = to_llf_channels(values, names)
    count = len(LLF_BLENDSHAPES) + len(LLF_POSE)
    zeros = ",".join(["0.0000000000"] * len(LLF_POSE))
    lines = [",".join(LLF_COLUMNS)]
    for k, row in enumerate(channels):
        cells = ",".join(f"{v:.10f}" for v in row)
        lines.append(f"{timecode(k / fps)},{count},{cells},{zeros}")
    return "\n".join(lines) + "\n"


def write_animation(path: str | Path, values: np.ndarray, names: Sequence[str], fps: float, fmt: str) -> Path:
    """Write blendshapes (n_frames, len(names)) at ``fps`` as ``csv`` (Live Link Face), ``json``
    (``fps``, ``names``: the 52 ARKit channels, ``frames``) or ``npy`` ((n_frames, 52) float32 in
    :data:`LLF_BLENDSHAPES` order). Atomic: temporary file, then rename."""
    path = Path(path)
    if fmt == "csv":
        _write_atomic(path, llf_csv(values, names, fps).encode())
    elif fmt == "json":
        doc = {
            "fps": fps,
            "names": list(LLF_BLENDSHAPES),
            "frames": np.round(to_llf_channels(values, names), 6).tolist(),
        }
        _write_atomic(path, json.dumps(doc).encode())
    elif fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, to_llf_channels(values, names).astype(np.float32))
        _write_atomic(path, buffer.getvalue())
    else:
        raise UnknownFormat(f"unknown animation format {fmt!r}: one of {FORMATS}")
    return path
