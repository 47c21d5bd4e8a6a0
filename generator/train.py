"""Training the generator on an export (``curate train EXPORT --out RUN``).

A run folder holds::

    RUN/checkpoint.pt   latest state (model, optimizer, step, recipe, export), replaced atomically
    RUN/log.jsonl       one line per step (step, loss, lr) and per validation (step, val_loss)

Before the first step the export's speech features are computed once and cached beside its
shards (:func:`generator.data.ensure_features`), and the corpus statistics fixed: the default
neutral, the feature scale and the dead channels. After the last step the per-channel gain is
fitted on the val split's speakers (:mod:`generator.model`).

A checkpoint is written every ``checkpoint_every`` steps and at the end; training again into a
run folder with a checkpoint resumes from it up to ``steps``. The model's shape must then be the
one it was trained with.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from generator.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from generator.config import TrainConfig
from generator.data import Clip, Export, SequenceStream, ShardError, WindowStream, ensure_features
from generator.features import load_frame_features
from generator.losses import blendshape_loss, channel_weights
from generator.model import Generator
from settings.errors import InvalidInput, NothingToWorkOn


class TrainingError(NothingToWorkOn, ValueError):
    """The run cannot start or go on (an existing run with another model shape, an empty split)."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int  # steps done in all, resumed ones included
    losses: list[float]  # training loss of each step done by this call
    val_loss: float | None  # on the full val sequences at the end; None without a val split
    windows: int  # training windows seen by this call
    seconds: float  # wall time of this call's steps
    n_parameters: int

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.seconds if self.seconds else 0.0

    def to_text(self) -> str:
        """One line: the run folder, the step reached, the model's size, and the speed of this call."""
        speed = f", {self.windows_per_s:.1f} windows/s" if self.windows else ""
        return f"{self.run_dir}: step {self.step}, {self.n_parameters / 1e6:.2f}M parameters{speed}"


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name not in ("auto", "cpu", "cuda"):
        raise InvalidInput(f"unknown device {name!r}: use auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device cuda asked for, but torch sees no CUDA GPU")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class CorpusStats:
    """What the model fixes from the train split before its first step."""

    mean_neutral: torch.Tensor  # (n_channels,) mean of the clips' neutrals: the default neutral
    feature_scale: torch.Tensor  # (dim,) std of each feature over the frames
    motion_std: torch.Tensor  # (n_channels,) std of each channel's motion over frames with a face
    neutral_std: torch.Tensor  # (n_channels,) std of the clips' neutrals: the style code's unit


def corpus_stats(export: Export, features: str) -> CorpusStats:
    """:class:`CorpusStats` of the train split (its features cached already)."""
    neutrals, motions, feats = [], [], []
    for clip in SequenceStream(export.files("train"), rank=0, world_size=1, features=features):
        neutrals.append(clip.neutral)
        motions.append(clip.motion[clip.face_present])
        if clip.features is None:
            raise TrainingError(f"clip {clip.clip_id} has no cached {features} features")
        feats.append(clip.features)
    return CorpusStats(
        torch.from_numpy(np.mean(neutrals, axis=0)).float(),
        torch.from_numpy(np.concatenate(feats).std(axis=0) + 1e-6).float(),
        torch.from_numpy(np.concatenate(motions).std(axis=0)).float(),
        torch.from_numpy(np.std(neutrals, axis=0)).float(),
    )


def cache_features(export: Export, features: str, report: Callable[[str], None] | None) -> None:
    """Encode and cache the export's speech features where they are missing, saying so."""
    clips = sum(s["clips"] for s in export.manifest["splits"].values())
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if report:
            report(f"features ({features}): {done[0]}/{clips} clips")

    ensure_features(export, features, lambda: load_frame_features(features), progress)


def clip_motion(model: Generator, clip: Clip) -> torch.Tensor:
    """The model's motion (1, n_frames, n_channels) for a whole clip with cached features, on the
    clip's own neutral, on the model's device."""
    if clip.features is None:
        raise ShardError(f"clip {clip.clip_id} has no cached features")
    device = model.gain.device
    return model(torch.from_numpy(clip.features)[None].to(device), torch.from_numpy(clip.neutral).to(device))


@torch.no_grad()
def fit_gain(model: Generator, export: Export) -> torch.Tensor | None:
    """Per channel the least-squares scale of the model's motion onto the val clips' motion over
    frames with a face, clipped to [0, 1], shape (n_channels,); None without a val split."""
    try:
        files = export.files("val")
    except ShardError:
        return None
    device = model.gain.device
    was_training = model.training
    model.eval()
    model.gain.fill_(1.0)
    cross = torch.zeros_like(model.gain)
    power = torch.zeros_like(model.gain)
    for clip in SequenceStream(files, rank=0, world_size=1, features=model.config.features):
        pred = clip_motion(model, clip)[0]
        keep = torch.from_numpy(clip.face_present).to(device)
        truth = torch.from_numpy(clip.motion).to(device)
        cross += (pred * truth)[keep].sum(0)
        power += (pred * pred)[keep].sum(0)
    model.train(was_training)
    return (cross / power.clamp(min=1e-9)).clamp(0.0, 1.0)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``steps``."""
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / config.steps, 1.0)))


@torch.no_grad()
def validation_loss(
    model: Generator, export: Export, weights: torch.Tensor, velocity_weight: float
) -> float | None:
    """Loss on every val clip whole (mean over clips); None when the export has no val split."""
    try:
        files = export.files("val")
    except ShardError:
        return None
    device = weights.device
    was_training = model.training
    model.eval()
    losses = []
    for clip in SequenceStream(files, rank=0, world_size=1, features=model.config.features):
        target = torch.from_numpy(clip.motion)[None].to(device)
        mask = torch.from_numpy(clip.face_present.astype(np.float32))[None].to(device)
        pred = clip_motion(model, clip)
        losses.append(float(blendshape_loss(pred, target, mask, weights, velocity_weight)))
    model.train(was_training)
    return float(np.mean(losses))


def _append_log(run_dir: Path, line: dict[str, Any]) -> None:
    with open(run_dir / "log.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")


def train(
    export_path: str | Path,
    run_dir: str | Path,
    config: TrainConfig,
    report: Callable[[str], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train on the train split of ``export_path`` into ``run_dir``, resuming its checkpoint if any.

    ``report`` gets a line at each checkpoint; ``progress`` shows a bar over the steps (loss,
    windows per second, time left)."""
    run_dir = Path(run_dir)
    export = Export.open(export_path)
    files = export.files("train")
    device = pick_device(config.device)
    # Encoded before subnormals are flushed, so the encoder's numbers stay exact.
    cache_features(export, config.model.features, report)
    if device.type == "cpu":
        # Adam's second moments of the first, tiny gradients go subnormal, and x86 arithmetic on
        # subnormals made early steps 10-20x slower (4-5 s instead of 0.25 s). Process-wide; numpy
        # then notices that the smallest subnormal reads as zero, which is the point.
        torch.set_flush_denormal(True)
        warnings.filterwarnings("ignore", message="The value of the smallest subnormal", category=UserWarning)
    torch.manual_seed(config.seed)
    resumed = None
    if (run_dir / CHECKPOINT).exists():
        resumed = load_checkpoint(run_dir, device)
        if resumed.config.model != config.model:
            raise TrainingError(
                f"{run_dir} holds a model of another shape ({resumed.config.model}); train into a new --out"
            )
        if resumed.export.resolve() != export.path.resolve():
            raise TrainingError(f"{run_dir} was trained on {resumed.export}, not {export.path}")
    if resumed:
        model = resumed.model
    else:
        stats = corpus_stats(export, config.model.features)
        model = Generator(config.model, stats.mean_neutral, stats.feature_scale, stats.neutral_std)
        model.live.copy_((stats.motion_std >= config.dead_below).float())
    model.gain.fill_(1.0)  # refitted after the last step
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step = 0
    if resumed:
        optimizer.load_state_dict(resumed.state["optimizer"])
        step = resumed.step
    weights = channel_weights(export.names, config.lip_weight).to(device) * model.live
    window_frames = max(1, round(config.window_s * export.fps))
    stream = WindowStream(files, window_frames, config.model.features, config.shuffle_buffer, config.seed)
    loader = DataLoader(stream, batch_size=config.batch_size, num_workers=config.workers)

    def checkpoint() -> float | None:
        val = validation_loss(model, export, weights, config.velocity_weight)
        _append_log(run_dir, {"step": step, "val_loss": val})
        state = {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": config.model_dump(mode="json"),
            "names": export.names,
            "fps": export.fps,
            "sample_rate_hz": export.sample_rate_hz,
            "export": str(export.path.resolve()),
        }
        save_checkpoint(run_dir, state)
        return val

    run_dir.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    windows, val = 0, None
    stream.set_epoch(step)  # a resumed run draws fresh windows, not the first run's again
    if step >= config.steps and report:
        report(f"{run_dir} has done its {config.steps} steps already: nothing to do (--steps more to go on)")
    bar = tqdm(total=config.steps, initial=step, desc="curate train", unit="step", disable=not progress)
    start = time.perf_counter()
    batches = iter(loader)
    while step < config.steps:
        batch = next(batches, None)
        if batch is None:
            raise TrainingError(f"the train split of {export.path} gave no training window")
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        features, neutral, target, mask = (
            batch[k].to(device) for k in ("features", "neutral", "target", "mask")
        )
        pred = model(features, neutral)
        loss = blendshape_loss(pred, target, mask, weights, config.velocity_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        windows += len(features)
        losses.append(loss.item())
        _append_log(run_dir, {"step": step, "loss": losses[-1], "lr": lr})
        bar.update(1)
        bar.set_postfix(
            loss=f"{losses[-1]:.5f}",
            windows_s=f"{windows / (time.perf_counter() - start):.0f}",
            refresh=False,
        )
        if step == config.steps:
            gain = fit_gain(model, export)
            if gain is not None:
                model.gain.copy_(gain)
            elif report:
                report("no val split: the per-channel gain stays 1 (export with --val above 0 to fit it)")
        if step % config.checkpoint_every == 0 or step == config.steps:
            val = checkpoint()
            if report:
                line = f"step {step}: loss {losses[-1]:.5f}" + ("" if val is None else f", val {val:.5f}")
                if progress:
                    bar.write(line)  # above the bar, which stays at the bottom
                else:
                    report(line)
    bar.close()
    seconds = time.perf_counter() - start
    return TrainResult(run_dir, step, losses, val, windows, seconds, model.n_parameters())
