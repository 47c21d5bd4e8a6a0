"""``curate predict RUN audio --out anim.csv``: blendshape animation from speech with a trained run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from generator.checkpoint import Trained
from ingest.media import frame_grid, read_audio


class PredictError(ValueError):
    """The audio cannot be read, or has no sample."""


@dataclass(frozen=True)
class Animation:
    values: np.ndarray  # (n_frames, len(names)) in [0, 1]; frame k at k / fps seconds
    names: list[str]
    fps: float


@torch.no_grad()
def predict_audio(trained: Trained, audio: np.ndarray) -> Animation:
    """Blendshapes for 16 kHz mono ``audio`` (n_samples,), one frame per grid time below its end."""
    n_frames = len(frame_grid(0.0, len(audio) / trained.sample_rate_hz, trained.fps))
    if not n_frames:
        raise PredictError("the audio is empty")
    device = trained.model.mean_pose.device
    batch = torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None].to(device)
    values = trained.model(batch, n_frames, trained.fps)[0].cpu().numpy()
    return Animation(values, trained.names, trained.fps)


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
