"""``curate predict RUN audio --out anim.csv [--neutral pose.json] [--calibration cal.json]``:
blendshape animation from speech with a trained run, on the speaker's neutral pose when one is
given (else the model's default neutral), mapped to ARKit ranges when a calibration is given.
:func:`predict_file` does the whole command; :func:`predict_audio` is its core on audio in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from generator.checkpoint import Trained, load_checkpoint
from generator.features import FrameFeatures, load_frame_features
from generator.livelink import format_for, write_animation
from generator.train import pick_device
from ingest.media import frame_grid, read_audio
from manifests.arkit_map import Calibration
from settings.errors import NothingToWorkOn


class PredictError(NothingToWorkOn, ValueError):
    """The audio cannot be read, or has no sample."""


@dataclass(frozen=True)
class Animation:
    values: np.ndarray  # (n_frames, len(names)) in [0, 1]; frame k at k / fps seconds
    names: list[str]
    fps: float


@torch.no_grad()
def predict_audio(
    trained: Trained,
    audio: np.ndarray,
    neutral: np.ndarray | None = None,
    features: FrameFeatures | None = None,
) -> Animation:
    """Blendshapes for 16 kHz mono ``audio`` (n_samples,), one frame per grid time below its end,
    on ``neutral`` (n_channels,) or the model's default neutral. ``features``: a loaded maker of
    the model's features (default: load one)."""
    n_frames = len(frame_grid(0.0, len(audio) / trained.sample_rate_hz, trained.fps))
    if not n_frames:
        raise PredictError("the audio is empty")
    device = trained.model.default_neutral.device
    maker = features or load_frame_features(trained.config.model.features)
    rows = torch.from_numpy(maker(audio, trained.fps, n_frames))[None].to(device)
    base = None if neutral is None else torch.from_numpy(np.asarray(neutral, np.float32)).to(device)
    values = trained.model.animate(rows, base)[0].cpu().numpy()
    return Animation(values, trained.names, trained.fps)


def read_neutral(path: str | Path, trained: Trained) -> np.ndarray:
    """A neutral pose from a JSON object of channel name -> value in [0, 1]; channels it leaves
    out keep the model's default. Shape (n_channels,)."""
    try:
        given = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PredictError(f"cannot read the neutral pose {path}: {exc}") from None
    if not isinstance(given, dict):
        raise PredictError(f"{path}: a neutral pose is a JSON object of channel name -> value")
    unknown = sorted(set(given) - set(trained.names))
    if unknown:
        raise PredictError(f"{path}: unknown channels {unknown[:5]} (the model's: {trained.names[:3]}...)")
    neutral = trained.model.default_neutral.cpu().numpy().copy()
    for name, value in given.items():
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise PredictError(f"{path}: {name} must be a number in [0, 1], not {value!r}")
        neutral[trained.names.index(name)] = value
    return neutral


def read_speech(path: str | Path) -> np.ndarray:
    """Any audio or video file PyAV decodes, as 16 kHz mono float32 (n_samples,)."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path} does not exist")
    try:
        return read_audio(path)
    except IndexError:
        raise PredictError(f"{path} has no audio stream") from None
    except av.error.FFmpegError as exc:
        raise PredictError(f"{path} is not readable audio: {exc}") from None


def predict_file(
    run_dir: str | Path,
    audio: str | Path,
    out: str | Path,
    fmt: str | None = None,
    neutral: str | Path | None = None,
    calibration: str | Path | None = None,
    device: str = "cpu",
) -> Animation:
    """Animate the speech of the file ``audio`` with the model of the run folder ``run_dir`` and
    write the animation to ``out``; returns what was written.

    - ``audio``: any audio or video file PyAV decodes, read as 16 kHz mono.
    - ``fmt``: ``csv`` (Live Link Face), ``json`` or ``npy`` (:mod:`generator.livelink`); default
      from ``out``'s suffix (``.json``, ``.npy``, else ``csv``). Checked before anything is loaded.
    - ``neutral``: a JSON object of channel -> value in [0, 1], the speaker's resting pose
      (default: the model's neutral).
    - ``calibration``: a ``curate calibrate`` file mapping the values to ARKit ranges.
    - ``device``: ``auto``, ``cpu`` or ``cuda``.

    The result's ``values`` are (n_frames, n_channels) in [0, 1], frame k at k / ``fps`` seconds,
    one frame per grid time below the audio's end, at the model's frame rate. Raises
    :class:`~generator.livelink.UnknownFormat`, :class:`~generator.checkpoint.NoCheckpoint`,
    :class:`PredictError` or :class:`~manifests.arkit_map.CalibrationError`.
    """
    chosen = format_for(out, fmt)
    trained = load_checkpoint(run_dir, pick_device(device))
    pose = read_neutral(neutral, trained) if neutral else None
    animation = predict_audio(trained, read_speech(audio), pose)
    if calibration:
        values = Calibration.load(calibration).apply(animation.values, animation.names)
        animation = Animation(values, animation.names, animation.fps)
    write_animation(out, animation.values, animation.names, animation.fps, chosen)
    return animation
