"""Which layer of the Whisper encoder carries emotion? The speech-emotion protocol of
:mod:`bench.speech_emotion` on states pooled from each layer of ``whisper-base``.

    python -m bench.whisper_layers [--layers 3 6 1+3] [--out DIR] [--json F]

CTranslate2, which runs Whisper in the pipeline, gives only the encoder's last layer. Here the
encoder is run in PyTorch from the same CTranslate2 weights (``model.bin``, read by
:func:`read_ct2`; its last layer matches CTranslate2 run in float32 to 2e-5 on a 30 s window, checked
and printed first), on each pool utterance's speech (voice activity joined, at most 30 s),
encoded unpadded (only its own log-mel frames: 0.1 s an utterance instead of 1.6 s). Features:
mean and standard deviation of a layer's outputs over the utterance (``0``-``5``: after each of
the six blocks; ``6``: after the final layer norm, what CTranslate2 gives), joined for ``a+b``,
then the prosody and spectral statistics of the speech, as
:func:`extractors.emotion.speech_features.window_features` has them. Classifier: logistic,
sample weights per speaker and corpus; 5-fold leave-speakers-out, L2 and temperature chosen
inside (:func:`bench.speech_emotion.nested_cv`). Layer features are cached in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bench.speech_emotion import CORPORA, POOL, corpus_figures, load_pool, nested_cv
from extractors.emotion.fusion import EMOTION_CLASSES
from extractors.emotion.speech_features import ENCODER, prosody, spectral
from extractors.registry import model_spec
from extractors.speech.window import WINDOW_SAMPLES, encode_speech, window_mel, window_speech
from ingest.media import read_audio
from settings.models import cache_dir, resolve

OUT = Path("/tmp/whisper_layers")
_FLOAT16 = 4  # CTranslate2's code for float16 variables


def read_ct2(path: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The float16 variables named ``prefix``... of a CTranslate2 ``model.bin`` (binary version
    6), as float32 arrays by name without the prefix."""

    def number(fh: BinaryIO, kind: str) -> int:
        return int(struct.unpack("<" + kind, fh.read(struct.calcsize(kind)))[0])

    def text(fh: BinaryIO) -> str:
        return fh.read(number(fh, "H")).rstrip(b"\0").decode()

    out = {}
    with open(path, "rb") as fh:
        number(fh, "I"), text(fh), number(fh, "I")  # binary version, spec name, revision
        for _ in range(number(fh, "I")):
            name = text(fh)
            shape = [number(fh, "I") for _ in range(number(fh, "B"))]
            kind, size = number(fh, "B"), number(fh, "I")
            data = fh.read(size)
            if name.startswith(prefix) and kind == _FLOAT16:
                out[name[len(prefix) :]] = np.frombuffer(data, np.float16).astype(np.float32).reshape(shape)
    return out


class LayeredEncoder:
    """Whisper's encoder (2 convolutions, sinusoidal positions, pre-norm blocks of 8-head
    attention and a GELU MLP, a final layer norm) from CTranslate2 weights, every block's output
    kept."""

    def __init__(self, model_dir: Path):
        import torch

        self.torch = torch
        self.w = {k: torch.from_numpy(v) for k, v in read_ct2(Path(model_dir) / "model.bin").items()}
        self.blocks = sum(1 for k in self.w if k.endswith("ffn/linear_0/weight"))

    def __call__(self, mel: np.ndarray) -> list[np.ndarray]:
        """Outputs (frames // 2, 512) of each block and, last, of the final layer norm, for a
        log-mel of (80, frames) (frames even)."""
        torch, w = self.torch, self.w
        f = torch.nn.functional
        with torch.no_grad():
            x = f.gelu(
                f.conv1d(
                    torch.from_numpy(np.asarray(mel, np.float32))[None],
                    w["conv1/weight"],
                    w["conv1/bias"],
                    padding=1,
                )
            )
            x = f.gelu(f.conv1d(x, w["conv2/weight"], w["conv2/bias"], stride=2, padding=1))[0].T
            x = x + w["position_encodings/encodings"][: len(x)]
            n, dim = x.shape
            outs = []
            for i in range(self.blocks):
                p = f"layer_{i}/"

                def norm(t: Any, name: str, p: str = p) -> Any:
                    return f.layer_norm(
                        t, (dim,), w[p + name + "/layer_norm/gamma"], w[p + name + "/layer_norm/beta"]
                    )

                def linear(t: Any, name: str, p: str = p) -> Any:
                    return t @ w[p + name + "/weight"].T + w[p + name + "/bias"]

                q, k, v = linear(norm(x, "self_attention"), "self_attention/linear_0").split(dim, dim=1)
                heads = [t.reshape(n, 8, dim // 8).transpose(0, 1)[None] for t in (q, k, v)]
                attended = f.scaled_dot_product_attention(*heads)[0].transpose(0, 1).reshape(n, dim)
                x = x + linear(attended, "self_attention/linear_1")
                x = x + linear(f.gelu(linear(norm(x, "ffn"), "ffn/linear_0")), "ffn/linear_1")
                outs.append(x.numpy().copy())
            outs.append(f.layer_norm(x, (dim,), w["layer_norm/gamma"], w["layer_norm/beta"]).numpy())
        return outs


def check_against_ct2(encoder: LayeredEncoder, whisper: Any, audio: np.ndarray) -> float:
    """Largest difference between this encoder's last layer and CTranslate2's on a padded window."""
    window = encode_speech(whisper, audio)
    assert window is not None
    mine = encoder(window_mel(whisper, window.audio))[-1][: len(window.states)]
    return float(np.abs(mine - window.states).max())


def layer_features(rows: list[dict[str, str]], out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per utterance: the mean and standard deviation of every layer's outputs, shape (n, 7,
    1024), and its prosody and spectral statistics, (n, 147); cached in ``out``."""
    cache = out / "layers.npz"
    if not cache.exists():
        from faster_whisper import WhisperModel

        folder = resolve(model_spec(ENCODER), {}, cache_dir(None))
        # float32: the check compares with CTranslate2 unquantised (int8 differs by ~0.5)
        whisper = WhisperModel(str(folder), device="cpu", compute_type="float32", cpu_threads=1)
        encoder = LayeredEncoder(folder)
        first = read_audio(POOL / rows[0]["file"])
        print(
            f"last layer against CTranslate2: max difference {check_against_ct2(encoder, whisper, first):.2e}"
        )
        layers, extra = [], []
        started = time.perf_counter()
        for row in rows:
            audio = read_audio(POOL / row["file"])
            speech = window_speech(audio)
            if len(speech) < 3200:  # no voice activity found: the whole file
                speech = audio[:WINDOW_SAMPLES]
            mel = whisper.feature_extractor(speech)
            frames = max(2, (mel.shape[1] - 1) // 2 * 2)
            layers.append([np.concatenate([o.mean(axis=0), o.std(axis=0)]) for o in encoder(mel[:, :frames])])
            extra.append(np.concatenate([prosody(speech), spectral(speech)]))
        print(f"{len(rows)} utterances in {time.perf_counter() - started:.0f} s")
        out.mkdir(parents=True, exist_ok=True)
        np.savez(cache, layers=np.asarray(layers, np.float32), extra=np.asarray(extra, np.float32))
    with np.load(cache) as f:
        return f["layers"], f["extra"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", nargs="+", default=["1", "2", "3", "4", "6", "2+4"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows, _ = load_pool(POOL)
    layers, extra = layer_features(rows, args.out)
    y = np.array([EMOTION_CLASSES.index(r["target"]) for r in rows])
    speakers = np.array([r["speaker"] for r in rows])
    corpora = np.array([r["dataset"] for r in rows])
    recipe = {"classifier": "logistic", "speaker_centred": False, "weighting": "speaker+corpus"}
    results: dict[str, Any] = {}
    for name in args.layers:
        x = np.hstack([layers[:, int(i)] for i in name.split("+")] + [extra]).astype(np.float64)
        cv = nested_cv(x, y, speakers, corpora, recipe)
        figs = corpus_figures(cv["logits"], cv["temperature"], y, corpora, speakers)
        results[name] = {c: figs[c]["top1"] for c in CORPORA}
        print(f"layer {name}: {results[name]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"recipe": recipe, "top1": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
