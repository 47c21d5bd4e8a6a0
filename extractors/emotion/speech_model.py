"""The speech-emotion classifier on standardised utterance features
(:mod:`extractors.emotion.speech_features`), over the project's seven classes
(:data:`extractors.emotion.fusion.EMOTION_CLASSES`, in that order): multinomial logistic
regression, or a small MLP (one hidden layer, an average of a few seeds' logits).

Logistic: ``p = softmax((z @ weights + bias) / temperature)``, ``z`` the standardised features;
fitted by L-BFGS on the mean (optionally weighted) cross-entropy plus ``l2 / 2 * |weights|^2``
(the bias is not penalised). MLP: ``logits = mean_m(gelu(z @ hidden_weights[m] + hidden_bias[m])
@ weights[m] + bias[m])`` (tanh-approximated GELU), fitted by AdamW with dropout
(:func:`fit_mlp`). The temperature is fitted afterwards on predictions for speakers the fit did
not see (:func:`fit_temperature`). When ``recipe["speaker_centred"]`` is true the features of each
speaker are centred on that speaker's own mean before the model sees them
(:func:`extractors.emotion.speech_features.speaker_centred`): pass ``speakers`` to
:meth:`SpeechEmotionModel.predict_proba`.

A saved model (``.npz``) holds its standardisation, weights, classes, temperature and its
``recipe`` (JSON): the features, the training data and those data's terms of use, which a model
trained on them carries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extractors.emotion.fusion import EMOTION_CLASSES
from extractors.emotion.speech_features import speaker_centred
from settings.files import regular_file

#: Terms of the corpora the shipped model is trained on (a model trained on them carries them).
CORPUS_TERMS: dict[str, str] = {
    "RAVDESS": "CC BY-NC-SA 4.0 (non-commercial, share-alike; Livingstone & Russo 2018)",
    "EmoDB": "free for research, no formal licence (Burkhardt et al. 2005)",
    "URDU": "research use (Latif et al. 2018)",
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def restricted(probs: np.ndarray, allowed: Sequence[int] | None) -> np.ndarray:
    """``probs`` (n, k) with the classes outside ``allowed`` (indices) set to 0 and the rest
    renormalised; unchanged when ``allowed`` is None."""
    if allowed is None:
        return probs
    out = np.zeros_like(probs)
    out[:, list(allowed)] = probs[:, list(allowed)]
    return out / out.sum(axis=1, keepdims=True)


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float,
    sample_weight: np.ndarray | None = None,
    max_iter: int = 500,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on already standardised ``x`` (n, d), labels ``y`` (n,)
    in ``0..n_classes-1``: (weights (d, k), bias (k,)) minimising the weighted mean
    cross-entropy plus ``l2 / 2 * |weights|^2``. ``init``: a starting point (a neighbouring L2's
    solution), else zero weights and the class priors' log as bias."""
    import torch

    xt = torch.as_tensor(np.asarray(x, np.float64))
    yt = torch.as_tensor(np.asarray(y, np.int64))
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    wt = torch.as_tensor(w / w.sum())
    if init is None:
        prior = np.bincount(y, weights=w, minlength=n_classes) / w.sum()
        init = (np.zeros((x.shape[1], n_classes)), np.log(prior + 1e-3))
    weights = torch.as_tensor(np.array(init[0], np.float64)).requires_grad_(True)
    bias = torch.as_tensor(np.array(init[1], np.float64)).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [weights, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-10,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logp = torch.log_softmax(xt @ weights + bias, dim=1)
        loss = -(wt * logp[torch.arange(len(yt)), yt]).sum() + 0.5 * l2 * (weights**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weights.detach().numpy().copy(), bias.detach().numpy().copy()


#: The MLP's settings: hidden units, epochs, AdamW weight decay and learning rate, dropout on the
#: inputs and on the hidden layer, minibatch size, members (seeds averaged).
MLP_SETTINGS: dict[str, float] = {
    "hidden": 128, "epochs": 40, "weight_decay": 0.05, "lr": 1e-3, "input_dropout": 0.2,
    "hidden_dropout": 0.3, "batch": 64, "members": 3,
}  # fmt: skip


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    sample_weight: np.ndarray | None = None,
    settings: dict[str, float] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-hidden-layer MLPs on already standardised ``x`` (n, d), labels ``y`` (n,), one per
    member seed: (hidden_weights (m, d, h), hidden_bias (m, h), weights (m, h, k), bias (m, k)),
    minimising the weighted cross-entropy with AdamW, dropout as :data:`MLP_SETTINGS` says."""
    import torch

    cfg = dict(MLP_SETTINGS, **(settings or {}))
    h, members = int(cfg["hidden"]), int(cfg["members"])
    a = torch.as_tensor(np.asarray(x, np.float32))
    b = torch.as_tensor(np.asarray(y, np.int64))
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    wt = torch.as_tensor((w / w.mean()).astype(np.float32))
    out: list[list[np.ndarray]] = [[], [], [], []]
    for m in range(members):
        gen = torch.Generator().manual_seed(seed * 1000 + m)
        torch.manual_seed(seed * 1000 + m)
        first, last = torch.nn.Linear(x.shape[1], h), torch.nn.Linear(h, n_classes)
        net = torch.nn.Sequential(
            torch.nn.Dropout(cfg["input_dropout"]), first, torch.nn.GELU(approximate="tanh"),
            torch.nn.Dropout(cfg["hidden_dropout"]), last,
        )  # fmt: skip
        opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        net.train()
        for _ in range(int(cfg["epochs"])):
            order = torch.randperm(len(b), generator=gen)
            for k in range(0, len(b), int(cfg["batch"])):
                j = order[k : k + int(cfg["batch"])]
                opt.zero_grad()
                loss = (torch.nn.functional.cross_entropy(net(a[j]), b[j], reduction="none") * wt[j]).mean()
                loss.backward()
                opt.step()
        for i, t in enumerate((first.weight.T, first.bias, last.weight.T, last.bias)):
            out[i].append(t.detach().numpy().astype(np.float64))
    hw, hb, ow, ob = (np.stack(o) for o in out)
    return hw, hb, ow, ob


def fit_temperature(
    logits: np.ndarray, y: np.ndarray, allowed: Sequence[Sequence[int] | None] | None = None
) -> float:
    """The temperature ``T`` minimising the mean negative log-likelihood of ``softmax(logits / T)``
    (each row restricted to its ``allowed`` classes, when given), searched on a log grid from 0.2
    to 10 then refined."""

    def nll(t: float) -> float:
        p = _softmax(logits / t)
        if allowed is not None:
            p = np.concatenate([restricted(p[i : i + 1], a) for i, a in enumerate(allowed)])
        return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

    grid = np.exp(np.linspace(np.log(0.2), np.log(10.0), 41))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = best * np.exp(np.linspace(-0.1, 0.1, 21))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-1 confidence: the clip-weighted mean, over ``bins``
    equal-width confidence bins, of |accuracy - mean confidence|."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            ece += rows.mean() * abs(right[rows].mean() - conf[rows].mean())
    return float(ece)


@dataclass
class SpeechEmotionModel:
    """A fitted classifier. ``mean``/``scale`` (d,): the standardisation; logistic: ``weights``
    (d, k), ``bias`` (k,); MLP: ``hidden_weights`` (m, d, h), ``hidden_bias`` (m, h), ``weights``
    (m, h, k), ``bias`` (m, k); ``classes``: the k class names (the project's seven, in order)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    classes: tuple[str, ...] = EMOTION_CLASSES
    temperature: float = 1.0
    recipe: dict[str, Any] = field(default_factory=dict)
    hidden_weights: np.ndarray | None = None
    hidden_bias: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        labels: Sequence[str],
        l2: float,
        sample_weight: np.ndarray | None = None,
        recipe: dict[str, Any] | None = None,
        classes: tuple[str, ...] = EMOTION_CLASSES,
        classifier: str = "logistic",
    ) -> SpeechEmotionModel:
        """Fit on features ``x`` (n, d) (already speaker-centred if the recipe says so) and class
        names ``labels`` (n,): ``classifier`` "logistic" (L2 strength ``l2``) or "mlp"
        (:data:`MLP_SETTINGS`, ``l2`` unused); the temperature stays 1 until set from held-out
        speakers."""
        x = np.asarray(x, np.float64)
        y = np.array([classes.index(label) for label in labels])
        mean = x.mean(axis=0)
        scale = x.std(axis=0) + 1e-6
        z = (x - mean) / scale
        if classifier == "mlp":
            hw, hb, weights, bias = fit_mlp(z, y, len(classes), sample_weight)
            info = dict(recipe or {}, classifier="mlp", mlp=MLP_SETTINGS)
            return cls(mean, scale, weights, bias, tuple(classes), 1.0, info, hw, hb)
        if classifier != "logistic":
            raise ValueError(f"unknown classifier {classifier!r}")
        weights, bias = fit_logistic(z, y, len(classes), l2, sample_weight)
        return cls(mean, scale, weights, bias, tuple(classes), 1.0, dict(recipe or {}, l2=l2))

    @property
    def reference_log(self) -> np.ndarray:
        """Mean class log-probabilities over the speech the model was fitted on, shape (k,): what
        a speaker's mean is moved onto in speaker-relative labels (uniform when not recorded)."""
        default = [-np.log(len(self.classes))] * len(self.classes)
        return np.asarray(self.recipe.get("reference_log", default), np.float64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits before the temperature, shape (n, k)."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        if self.hidden_weights is None or self.hidden_bias is None:
            return z @ self.weights + self.bias
        members = [
            _gelu(z @ hw + hb) @ w + b
            for hw, hb, w, b in zip(
                self.hidden_weights, self.hidden_bias, self.weights, self.bias, strict=True
            )
        ]
        return np.mean(members, axis=0)

    def predict_proba(
        self,
        x: np.ndarray,
        speakers: Sequence[str] | None = None,
        allowed: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Class probabilities (n, k) of feature rows ``x`` (n, d), temperature applied. With a
        speaker-centred recipe ``speakers`` (n,) must name each row's speaker, whose rows are then
        centred together (a speaker's mean is taken over the rows given here). ``allowed``: class
        names to restrict to (the others get 0, the rest are renormalised)."""
        x = np.asarray(x, np.float64)
        if self.recipe.get("speaker_centred"):
            if speakers is None:
                raise ValueError("this speech-emotion model is speaker-centred: give each row's speaker")
            x = speaker_centred(x, speakers)
        probs = _softmax(self.logits(x) / self.temperature)
        return restricted(probs, None if allowed is None else [self.classes.index(c) for c in allowed])

    def save(self, path: Path) -> None:
        """Write the model to ``path`` (``.npz``, no pickles): float32 arrays, but the MLP's hidden
        weights, the bulk of it, float16 (half the file; on the pool's 1,818 utterances the class
        probabilities move by under 1e-4 and no top class changes)."""
        arrays: dict[str, Any] = {
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": self.bias,
        }
        if self.hidden_weights is not None and self.hidden_bias is not None:
            arrays.update(hidden_weights=self.hidden_weights, hidden_bias=self.hidden_bias)
        arrays = {
            k: np.asarray(v, np.float16 if k == "hidden_weights" else np.float32) for k, v in arrays.items()
        }
        arrays.update(
            classes=np.array(self.classes),
            temperature=np.float64(self.temperature),
            recipe=np.array(json.dumps(self.recipe, sort_keys=True)),
        )
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> SpeechEmotionModel:
        """Read a model :meth:`save` wrote; its classes must be the project's seven, in order."""
        with np.load(regular_file(path, "speech-emotion model"), allow_pickle=False) as f:
            classes = tuple(str(c) for c in f["classes"])
            if classes != EMOTION_CLASSES:
                raise ValueError(f"{path}: fitted on classes {classes}, not {EMOTION_CLASSES}")
            a = {k: f[k].astype(np.float64) for k in f.files if k not in ("classes", "temperature", "recipe")}
            return cls(
                a["mean"], a["scale"], a["weights"], a["bias"], classes, float(f["temperature"]),
                json.loads(str(f["recipe"])), a.get("hidden_weights"), a.get("hidden_bias"),
            )  # fmt: skip
