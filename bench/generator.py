"""Speed of the generator: prediction on one CPU core, and training throughput.

    python -m bench.generator --export ROOT/exports/NAME [--steps 40] [--device auto] [--json F]

The export gives real speech and real training windows (``curate export``). Measured, each
against a baseline from the same run:

- prediction, one CPU thread, the default model (about 143k parameters over Whisper-tiny features;
  speed does not depend on the weights), on the export's speech joined into one 60 s sequence:
  seconds of audio per second for the log-mel and the Whisper features alone (the floor of any
  model on them) and for the whole model; and from a file to Live Link Face CSV text (decode +
  features + model + CSV) for each source video;
- training, default recipe (batch 32 windows of 2 s over cached features) on ``--device`` with
  all threads: windows per second of the data stream alone (shard and cache reading,
  windowing) and of ``curate train``'s loop (loader + forward + backward + AdamW, the gain fit
  and the checkpoint at the end).

Each part also records the share of its cores' time the process got (``cpu_share``): well under
1 means other work competed for the machine and the figures are low.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from generator.checkpoint import Trained
from generator.config import ModelConfig, TrainConfig
from generator.data import Export, SequenceStream, WindowStream
from generator.features import load_frame_features
from generator.livelink import llf_csv
from generator.model import Generator
from generator.predict import predict_audio, read_speech
from generator.train import cache_features, corpus_stats, pick_device, train

PREDICT_S = 60.0


def cpu_share(fn: Any, threads: int) -> tuple[Any, float]:
    """``fn()`` and the share of ``threads`` cores' time the process got meanwhile (about 1 on a
    quiet machine; less when other work competes for the cores)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, (time.process_time() - cpu) / ((time.perf_counter() - wall) * threads)


def timed(fn: Any, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def prediction(export: Export, model: Generator) -> dict[str, Any]:
    """Seconds of audio per second on one thread: each kind of features alone, the model, file -> CSV."""
    torch.set_num_threads(1)
    files = export.shard_files()
    speech = np.concatenate([c.audio for c in SequenceStream(files, rank=0, world_size=1)])
    audio = np.resize(speech, round(PREDICT_S * export.sample_rate_hz)).astype(np.float32)
    trained = Trained(
        model, TrainConfig(), export.names, export.fps, export.sample_rate_hz, export.path, 0, {}
    )
    n_frames = round(PREDICT_S * export.fps)
    features_s = {}
    for kind in ("log-mel", "whisper-tiny-en"):
        each = load_frame_features(kind)
        features_s[kind] = timed(lambda each=each: each(audio, export.fps, n_frames), 3)
    maker = load_frame_features(model.config.features)
    model_s, share = cpu_share(lambda: timed(lambda: predict_audio(trained, audio, features=maker), 3), 1)
    sources = sorted(
        {Path(u) for f in files for u in pq.read_table(f, columns=["source_uri"])[0].to_pylist()}
    )
    file_audio_s, file_wall_s = 0.0, 0.0
    for path in sources:
        start = time.perf_counter()
        animation = predict_audio(trained, read_speech(path), features=maker)
        llf_csv(animation.values, animation.names, animation.fps)
        file_wall_s += time.perf_counter() - start
        file_audio_s += len(animation.values) / animation.fps
    return {
        "audio_s": PREDICT_S,
        "features_speed": {kind: PREDICT_S / s for kind, s in features_s.items()},
        "model_speed": PREDICT_S / model_s,
        "file_to_csv_speed": file_audio_s / file_wall_s,
        "files": len(sources),
        "files_audio_s": file_audio_s,
        "cpu_share": share,
    }


def training(export: Export, steps: int, device: torch.device, work: Path) -> dict[str, Any]:
    """Windows per second of the data stream alone and of :func:`generator.train.train`
    (default recipe, its one checkpoint and validation at the end included)."""
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    config = TrainConfig(steps=steps, device="cpu" if device.type == "cpu" else "cuda")
    stream = WindowStream(export.files("train"), round(config.window_s * export.fps), config.model.features)
    start = time.perf_counter()
    for _ in itertools.islice(iter(DataLoader(stream, batch_size=config.batch_size)), steps):
        pass
    data_speed = steps * config.batch_size / (time.perf_counter() - start)
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    result, share = cpu_share(lambda: train(export.path, work / "run", config), threads)
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": config.batch_size,
        "window_s": config.window_s,
        "steps": steps,
        "parameters": result.n_parameters,
        "first_loss": result.losses[0],
        "last_loss": result.losses[-1],
        "data_windows_per_s": data_speed,
        "train_windows_per_s": result.windows_per_s,
        "cpu_share": share,
    }


def machine(device: torch.device) -> str:
    text = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.platform()}, torch {torch.__version__}"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def report(r: dict[str, Any]) -> str:
    p, t = r["prediction"], r["training"]
    return "\n".join(
        [
            f"machine: {r['machine']}",
            f"prediction, 1 CPU thread, {p['audio_s']:.0f} s of speech (s of audio per s):",
            f"  log-mel features alone  {p['features_speed']['log-mel']:8.1f}",
            f"  Whisper-tiny alone      {p['features_speed']['whisper-tiny-en']:8.1f}   "
            f"({p['features_speed']['whisper-tiny-en'] / p['features_speed']['log-mel']:.3f} of log-mel)",
            f"  model (Whisper + TCN)   {p['model_speed']:8.1f}   "
            f"({p['model_speed'] / p['features_speed']['whisper-tiny-en']:.3f} of its features alone; "
            f"CPU share {p['cpu_share']:.2f})",
            f"  file -> LLF CSV         {p['file_to_csv_speed']:8.1f}   ({p['files']} files, {p['files_audio_s']:.0f} s)",
            f"training on {t['device']}, {t['threads']} threads, batch {t['batch_size']} x {t['window_s']:g} s, "
            f"{t['parameters'] / 1e6:.2f}M parameters (windows per s):",
            f"  data stream alone       {t['data_windows_per_s']:8.1f}",
            f"  curate train loop       {t['train_windows_per_s']:8.1f}   ({t['train_windows_per_s'] / t['data_windows_per_s']:.3f} of the stream alone; "
            f"CPU share {t['cpu_share']:.2f})",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", type=Path, required=True, help="export folder (curate export)")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="training device")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    export = Export.open(args.export)
    device = pick_device(args.device)
    torch.manual_seed(0)
    kind = ModelConfig().features
    cache_features(export, kind, None)
    stats = corpus_stats(export, kind)
    model = Generator(ModelConfig(), stats.mean_neutral, stats.feature_scale, stats.neutral_std).eval()
    with tempfile.TemporaryDirectory(prefix="bench-generator-") as work:
        results = {
            "machine": machine(device),
            "export": str(export.path),
            "prediction": prediction(export, model),
            "training": training(export, args.steps, device, Path(work)),
        }
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
