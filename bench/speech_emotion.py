"""Speech-emotion cue (:mod:`extractors.emotion.speech_model`) on speakers it never heard.

    python -m bench.speech_emotion [--pool DIR] [--out DIR] [--json F] [--folds 5]

Data: the pool's emotional speech (``/work/shared/pool/speech_emotion``: RAVDESS, EmoDB, URDU;
``labels.csv``). RAVDESS calm counts as neutral; EmoDB boredom has no class of ours and is left
out (counted). Scores: RAVDESS and EmoDB top-1 over the seven classes; URDU top-1 over its four
(angry, neutral, happy, sad: the argmax restricted to them, and its probabilities renormalised).

Leave-speakers-out cross-validation: each corpus's speakers are dealt to ``--folds`` folds (most
clips first, each to the fold holding fewest of that corpus's clips), every fold is predicted by a
model fitted on the other folds' speakers; its L2 strength is chosen by an inner grouped
cross-validation on those training speakers alone (mean over corpora of top-1) and its
temperature fitted on that inner cross-validation's predictions. Cross-corpus: fitted on two
corpora (L2 and temperature chosen the same way on them), scored on every speaker of the third.

Candidates (:data:`CANDIDATES`): Whisper (``whisper-base``) states pooled (``whisper``: each
utterance alone in the encoder's 30 s window; ``whisper_clip``: encoded unpadded), prosody,
spectral statistics and their concatenations; without and with per-speaker centring; sample
weights uniform or equal per speaker and per corpus; ``whisper_packed``: a speaker's utterances
packed one after another into shared 30 s windows. ``window`` is what the pipeline computes
(:func:`extractors.emotion.speech_features.window_features` of the utterance's speech window as
the speech extractor encodes it: voice-activity spans joined, log-mel zero-padded to 30 s; pooled
states, prosody and spectral statistics of that speech): only its candidates are eligible to
ship, the others are there to compare features. The eligible recipe with the best
mean of per-corpus top-1 is fitted on every pool speaker (L2 and temperature from a
leave-speakers-out cross-validation over all of them) and saved to ``--out``/speech_emotion.npz;
figures go to ``--out``/figures.json (and ``--json``).

Feature parts are cached in ``--out``/features_<part>.npz (keyed by the clip list and encoder)
with the seconds they took on one thread, so reruns cost only the fits.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extractors.emotion.fusion import EMOTION_CLASSES
from extractors.emotion.speech_features import ENCODER, speaker_centred
from extractors.emotion.speech_model import (
    CORPUS_TERMS,
    SpeechEmotionModel,
    _softmax,
    expected_calibration_error,
    fit_logistic,
    fit_mlp,
    fit_temperature,
    restricted,
)

POOL = Path("/work/shared/pool/speech_emotion")
OUT = Path("/tmp/speech_emotion")
CORPORA = ("RAVDESS", "EmoDB", "URDU")
#: Classes a corpus is scored over (None: all seven).
SCORED: dict[str, tuple[str, ...] | None] = {
    "RAVDESS": None,
    "EmoDB": None,
    "URDU": ("angry", "neutral", "happy", "sad"),
}
TARGETS = {"RAVDESS": 0.60, "EmoDB": 0.70, "URDU": 0.65}
MIN_CONFIDENCE = 0.6  # [emotion] min_confidence's default: the abstention threshold
L2_GRID = (0.3, 0.1, 0.03, 0.01, 0.003)  # strongest first: each fit starts from the previous one
LABEL_MAP = {"calm": "neutral"}
WINDOW_SAMPLES = 480_000  # the Whisper encoder's 30 s window
PACK_GAP_SAMPLES = 4_800  # 0.3 s of silence after each packed utterance


def _candidate(
    features: str,
    centred: bool = False,
    weighting: str = "none",
    eligible: bool | None = None,
    classifier: str = "logistic",
) -> dict[str, Any]:
    return {
        "features": features,
        "speaker_centred": centred,
        "weighting": weighting,
        "classifier": classifier,
        "eligible": features == "window" if eligible is None else eligible,
    }


CANDIDATES: list[dict[str, Any]] = [
    _candidate("whisper_clip"),
    _candidate("whisper"),
    _candidate("whisper", centred=True),
    _candidate("prosody"),
    _candidate("prosody+spectral"),
    _candidate("prosody+spectral", centred=True),
    _candidate("whisper+prosody"),
    _candidate("whisper+prosody+spectral"),
    _candidate("whisper+prosody+spectral", centred=True),
    _candidate("whisper+prosody+spectral", weighting="speaker+corpus"),
    _candidate("whisper_clip+prosody+spectral"),
    _candidate("whisper+prosody+spectral", classifier="mlp"),
    _candidate("whisper+prosody+spectral", weighting="speaker+corpus", classifier="mlp"),
    _candidate("whisper_packed+prosody+spectral"),
    _candidate("window"),
    _candidate("window", classifier="mlp"),
    _candidate("window", weighting="speaker+corpus", classifier="mlp"),
]


def recipe_name(recipe: dict[str, Any]) -> str:
    """``features/classifier/weighting`` (with ``/centred`` when speaker-centred)."""
    name = f"{recipe['features']}/{recipe['classifier']}/{recipe['weighting']}"
    return name + ("/centred" if recipe["speaker_centred"] else "")


def load_pool(root: Path) -> tuple[list[dict[str, str]], dict[str, int]]:
    """The pool's rows with a class of ours (``target``), and the count of rows left out per
    corpus/label."""
    rows, left_out = [], {}
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            target = LABEL_MAP.get(row["label"], row["label"])
            if target not in EMOTION_CLASSES:
                key = f"{row['dataset']}/{row['label']}"
                left_out[key] = left_out.get(key, 0) + 1
                continue
            rows.append(dict(row, target=target))
    return rows, left_out


def whisper_speaker_packed(audios: Sequence[np.ndarray], encoder: Any) -> np.ndarray:
    """Comparison only: a speaker's utterances packed one after another (0.3 s apart) into 30 s
    windows, each window encoded once, each utterance's states pooled as
    :func:`extractors.emotion.speech_features.whisper_pooled` pools them, shape (n, 1024)."""
    from extractors.emotion.speech_features import active_states, pool_states

    out, i = [], 0
    while i < len(audios):
        window, starts = np.zeros(WINDOW_SAMPLES, np.float32), []
        pos = 0
        while i < len(audios):
            a = audios[i][:WINDOW_SAMPLES - PACK_GAP_SAMPLES]  # fmt: skip
            step = -(-len(a) // 320) * 320 + PACK_GAP_SAMPLES
            if starts and pos + step > WINDOW_SAMPLES:
                break
            window[pos : pos + len(a)] = a
            starts.append((pos, a))
            pos += step
            i += 1
        states = encoder.states(window)
        for start, a in starts:
            own = states[start // 320 : start // 320 + -(-len(a) // 320)]
            out.append(pool_states(own, active_states(a, len(own))))
    return np.stack(out)


def part_features(
    names: Sequence[str], rows: Sequence[dict[str, str]], root: Path, out: Path
) -> dict[str, dict[str, Any]]:
    """Per feature part: ``{"x": (n, d), "seconds": s, "audio_s": s}`` for ``rows`` (one thread;
    seconds exclude decoding), from ``out``/features_<part>.npz when it holds the same clips and
    encoder; the audio is decoded once for the parts not cached."""
    files = [r["file"] for r in rows]
    keys = {p: hashlib.sha256(("\n".join(files) + ENCODER + p).encode()).hexdigest() for p in names}
    done: dict[str, dict[str, Any]] = {}
    for part in names:
        cache = out / f"features_{part}.npz"
        if cache.exists():
            with np.load(cache, allow_pickle=False) as f:
                if str(f["key"]) == keys[part]:
                    done[part] = {k: f[k] for k in f.files}
    missing = [p for p in names if p not in done]
    if not missing:
        return done
    from extractors.emotion.speech_features import prosody, spectral, whisper_pooled, window_features
    from extractors.registry import model_spec
    from extractors.sync.features import WhisperEncoder
    from ingest.media import SPEECH_SR_HZ, read_audio
    from settings.models import cache_dir, resolve

    encoder = None
    if any(p.startswith("whisper") or p == "window" for p in missing):
        encoder = WhisperEncoder(resolve(model_spec(ENCODER), {}, cache_dir(None)), threads=1)
    per_clip: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "whisper": lambda a: whisper_pooled(a, encoder),
        "whisper_clip": lambda a: whisper_pooled(a, encoder, None),
        "prosody": prosody,
        "spectral": spectral,
        "window": lambda a: window_features(pipeline_window(a, encoder)),
    }
    audios = [read_audio(root / f) for f in files]
    audio_s = sum(len(a) for a in audios) / SPEECH_SR_HZ
    for part in missing:
        t0 = time.perf_counter()
        if part == "whisper_packed":
            x = np.zeros((len(rows), 1024), np.float32)
            speakers = np.array([r["speaker"] for r in rows])
            for speaker in np.unique(speakers):
                idx = np.flatnonzero(speakers == speaker)
                x[idx] = whisper_speaker_packed([audios[i] for i in idx], encoder)
        else:
            x = np.stack([per_clip[part](a) for a in audios])
        done[part] = {"x": x, "seconds": time.perf_counter() - t0, "audio_s": audio_s}
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / f"features_{part}.npz", key=np.array(keys[part]), **done[part])
        print(f"features {part}: {done[part]['seconds']:.0f} s for {audio_s:.0f} s of audio", flush=True)
    return done


def pipeline_window(audio: np.ndarray, encoder: Any) -> Any:
    """An utterance's speech window as the pipeline encodes it (:func:`encode_speech`); the whole
    utterance as its speech when voice activity detection finds none."""
    from extractors.speech.window import encode_speech

    whole = [{"start": 0, "end": len(audio)}]
    return encode_speech(encoder._model, audio) or encode_speech(encoder._model, audio, whole)


def feature_matrix(parts: dict[str, dict[str, Any]], kind: str) -> np.ndarray:
    """The parts ``kind`` names ("+"-joined) side by side, in that order, (n, d) float64."""
    return np.concatenate([np.asarray(parts[p]["x"], np.float64) for p in kind.split("+")], axis=1)


def speaker_folds(speakers: np.ndarray, corpora: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold (0..k-1) of each row: per corpus, speakers (most clips first, ties shuffled) each go to
    the fold holding the fewest of that corpus's clips so far, so every fold has every corpus."""
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for corpus in np.unique(corpora):
        names, counts = np.unique(speakers[corpora == corpus], return_counts=True)
        order = sorted(range(len(names)), key=lambda i: (-counts[i], rng.random()))
        load = np.zeros(k)
        for i in order:
            fold = int(np.argmin(load + rng.random(k) * 1e-3))
            fold_of[names[i]] = fold
            load[fold] += counts[i]
    return np.array([fold_of[s] for s in speakers])


def allowed_rows(corpora: np.ndarray) -> list[list[int] | None]:
    """Per row, the class indices its corpus is scored over (None: all)."""
    idx = {c: None if SCORED[c] is None else [EMOTION_CLASSES.index(n) for n in SCORED[c]] for c in CORPORA}
    return [idx.get(c) for c in corpora]


def scored_probs(
    logits: np.ndarray, corpora: np.ndarray, temperature: np.ndarray | float = 1.0
) -> np.ndarray:
    """Probabilities as each row's corpus is scored (URDU's restricted to its four classes);
    ``temperature`` a scalar or one per row."""
    t = np.broadcast_to(np.asarray(temperature, np.float64), (len(logits),))[:, None]
    probs = _softmax(logits / t)
    for corpus, classes in SCORED.items():
        rows = corpora == corpus
        if classes is not None and rows.any():
            probs[rows] = restricted(probs[rows], [EMOTION_CLASSES.index(c) for c in classes])
    return probs


def mean_corpus_top1(logits: np.ndarray, y: np.ndarray, corpora: np.ndarray) -> float:
    """Mean over the corpora present of their top-1 (scored as :data:`SCORED` says)."""
    right = scored_probs(logits, corpora).argmax(axis=1) == y
    return float(np.mean([right[corpora == c].mean() for c in np.unique(corpora)]))


def sample_weights(corpora: np.ndarray, speakers: np.ndarray, mode: str) -> np.ndarray | None:
    """Sample weights (mean 1): None for ``"none"`` (each clip counts once); ``"speaker+corpus"``:
    each speaker's clips share one unit, and each corpus's speakers weigh the same in all."""
    if mode == "none":
        return None
    if mode != "speaker+corpus":
        raise ValueError(f"unknown weighting {mode!r}")
    names, counts = np.unique(speakers, return_counts=True)
    per_speaker = dict(zip(names, counts, strict=True))
    w = 1.0 / np.array([per_speaker[s] for s in speakers], np.float64)
    for corpus in np.unique(corpora):
        w[corpora == corpus] /= w[corpora == corpus].sum()
    return w / w.mean()


def fit_predict_grid(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    l2_grid: Sequence[float],
    weight: np.ndarray | None,
    classifier: str = "logistic",
) -> dict[float, np.ndarray]:
    """Test logits (before temperature) of fits on the training rows, one per L2 (strongest
    first, each fit warm-started from the previous); an MLP is fitted once (``l2`` unused) and
    its logits given for every key."""
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    a, b = (x_train - mean) / scale, (x_test - mean) / scale
    if classifier == "mlp":
        hw, hb, w, bias = fit_mlp(a, y_train, len(EMOTION_CLASSES), weight)
        d = a.shape[1]
        logits = SpeechEmotionModel(
            np.zeros(d), np.ones(d), w, bias, hidden_weights=hw, hidden_bias=hb
        ).logits(b)
        return dict.fromkeys(l2_grid, logits)
    out, init = {}, None
    for l2 in sorted(l2_grid, reverse=True):
        init = fit_logistic(a, y_train, len(EMOTION_CLASSES), l2, weight, init=init)
        out[l2] = b @ init[0] + init[1]
    return out


def choose(
    x: np.ndarray,
    y: np.ndarray,
    speakers: np.ndarray,
    corpora: np.ndarray,
    k: int,
    recipe: dict[str, Any],
    seed: int,
) -> tuple[float, float, dict[float, float]]:
    """(L2, temperature, {L2: score}) from a ``k``-fold leave-speakers-out cross-validation of
    these rows: the L2 (:data:`L2_GRID`; 0 for an MLP) with the best mean of per-corpus top-1,
    the temperature fitted on its out-of-fold logits."""
    l2_grid = L2_GRID if recipe["classifier"] == "logistic" else (0.0,)
    folds = speaker_folds(speakers, corpora, k, seed)
    oof = {l2: np.zeros((len(y), len(EMOTION_CLASSES))) for l2 in l2_grid}
    for f in range(k):
        train, test = folds != f, folds == f
        weight = sample_weights(corpora[train], speakers[train], recipe["weighting"])
        fits = fit_predict_grid(x[train], y[train], x[test], l2_grid, weight, recipe["classifier"])
        for l2, logits in fits.items():
            oof[l2][test] = logits
    score = {l2: mean_corpus_top1(oof[l2], y, corpora) for l2 in l2_grid}
    best = max(l2_grid, key=lambda l2: (score[l2], l2))
    return best, fit_temperature(oof[best], y, allowed_rows(corpora)), score


def prepared(x: np.ndarray, speakers: np.ndarray, centred: bool) -> np.ndarray:
    return speaker_centred(x, speakers).astype(np.float64) if centred else x


def held_out(
    x: np.ndarray,
    y: np.ndarray,
    speakers: np.ndarray,
    corpora: np.ndarray,
    recipe: dict[str, Any],
    parts: Sequence[np.ndarray],
    inner_k: int,
    seed: int,
) -> dict[str, Any]:
    """Logits (n, 7) of each part's rows (``parts``: boolean masks covering the rows) from a fit
    on the other rows, its L2 and temperature chosen on those by an ``inner_k``-fold
    leave-speakers-out cross-validation; the temperature applied to each row, the L2 per part."""
    x = prepared(x, speakers, recipe["speaker_centred"])
    logits, temps, chosen = np.zeros((len(y), len(EMOTION_CLASSES))), np.ones(len(y)), []
    for test in parts:
        train = ~test
        l2, t, _ = choose(x[train], y[train], speakers[train], corpora[train], inner_k, recipe, seed)
        weight = sample_weights(corpora[train], speakers[train], recipe["weighting"])
        logits[test] = fit_predict_grid(x[train], y[train], x[test], [l2], weight, recipe["classifier"])[l2]
        temps[test] = t
        chosen.append(l2)
    return {"logits": logits, "temperature": temps, "l2": chosen}


def nested_cv(
    x: np.ndarray,
    y: np.ndarray,
    speakers: np.ndarray,
    corpora: np.ndarray,
    recipe: dict[str, Any],
    k: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Leave-speakers-out logits (n, 7), the temperature applied to each row, the L2 per fold."""
    folds = speaker_folds(speakers, corpora, k, seed)
    return held_out(x, y, speakers, corpora, recipe, [folds == f for f in range(k)], k - 1, seed + 1)


def cross_corpus(
    x: np.ndarray,
    y: np.ndarray,
    speakers: np.ndarray,
    corpora: np.ndarray,
    recipe: dict[str, Any],
    k: int = 4,
) -> dict[str, Any]:
    """Per corpus: logits of all its clips from a model fitted on the two other corpora only."""
    return held_out(x, y, speakers, corpora, recipe, [corpora == c for c in CORPORA], k, 1)


def corpus_figures(
    logits: np.ndarray, temps: np.ndarray, y: np.ndarray, corpora: np.ndarray, speakers: np.ndarray
) -> dict[str, Any]:
    """Per corpus: n, top-1, unweighted average recall, confusion matrix (rows true, columns
    predicted, in :data:`EMOTION_CLASSES` order), ECE of the top-1 confidence before and after the
    temperature, the mean over speakers of their own top-1, and the share labelled (calibrated
    confidence >= :data:`MIN_CONFIDENCE`) with the top-1 of those (``coverage``, ``precision``)."""
    raw = scored_probs(logits, corpora)
    cal = scored_probs(logits, corpora, temps)
    out: dict[str, Any] = {}
    for corpus in CORPORA:
        rows = corpora == corpus
        if not rows.any():
            continue
        pred, true = raw[rows].argmax(axis=1), y[rows]
        right = pred == true
        confusion = np.zeros((len(EMOTION_CLASSES), len(EMOTION_CLASSES)), int)
        np.add.at(confusion, (true, pred), 1)
        spk = speakers[rows]
        labelled = cal[rows].max(axis=1) >= MIN_CONFIDENCE
        out[corpus] = {
            "n": int(rows.sum()),
            "speakers": len(np.unique(spk)),
            "top1": round(float(right.mean()), 4),
            "uar": round(float(np.mean([right[true == c].mean() for c in np.unique(true)])), 4),
            "speaker_mean_top1": round(float(np.mean([right[spk == s].mean() for s in np.unique(spk)])), 4),
            "target": TARGETS[corpus],
            "meets_target": bool(right.mean() >= TARGETS[corpus]),
            "scored_classes": list(SCORED[corpus] or EMOTION_CLASSES),
            "ece_raw": round(expected_calibration_error(raw[rows], true), 4),
            "ece_temperature": round(expected_calibration_error(cal[rows], true), 4),
            "mean_confidence": round(float(cal[rows].max(axis=1).mean()), 4),
            "coverage": round(float(labelled.mean()), 4),
            "precision": round(float(right[labelled].mean()), 4) if labelled.any() else None,
            "confusion": confusion.tolist(),
        }
    out["mean_top1"] = round(float(np.mean([out[c]["top1"] for c in CORPORA if c in out])), 4)
    out["ece_raw_all"] = round(expected_calibration_error(raw, y), 4)
    out["ece_temperature_all"] = round(expected_calibration_error(cal, y), 4)
    out["temperature_mean"] = round(float(np.mean(temps)), 4)
    return out


def final_model(
    x: np.ndarray,
    y: np.ndarray,
    speakers: np.ndarray,
    corpora: np.ndarray,
    recipe: dict[str, Any],
    k: int,
    left_out: dict[str, int],
) -> SpeechEmotionModel:
    """The recipe fitted on every speaker; L2 and temperature from a ``k``-fold leave-speakers-out
    cross-validation over all of them; the recipe records the data and their terms."""
    xp = prepared(x, speakers, recipe["speaker_centred"])
    l2, temperature, score = choose(xp, y, speakers, corpora, k, recipe, 0)
    full = {
        "features": recipe["features"],
        "speaker_centred": recipe["speaker_centred"],
        "weighting": recipe["weighting"],
        "classifier": recipe["classifier"],
        "classifier_text": "multinomial logistic regression, standardised features, L2"
        if recipe["classifier"] == "logistic"
        else "MLP (one hidden layer, GELU, dropout, AdamW; seeds averaged), standardised features",
        "encoder": ENCODER,
        "sample_rate_hz": 16000,
        "data": "pool speech_emotion (labels.csv): RAVDESS, EmoDB, URDU, every pool speaker",
        "trained_on": {
            c: {"clips": int((corpora == c).sum()), "speakers": len(np.unique(speakers[corpora == c])),
                "classes": list(SCORED[c] or sorted({EMOTION_CLASSES[i] for i in y[corpora == c]})),
                "terms": CORPUS_TERMS[c]}
            for c in CORPORA
        },
        "label_map": {"RAVDESS calm": "neutral"},
        "left_out": left_out,
        "l2_cv": {str(k_): round(v, 4) for k_, v in score.items()},
        "terms": "trained on RAVDESS (CC BY-NC-SA 4.0: non-commercial, share-alike), EmoDB (free for "
        "research, no formal licence) and URDU (research use): the weights carry those terms",
    }  # fmt: skip
    weight = sample_weights(corpora, speakers, recipe["weighting"])
    labels = [EMOTION_CLASSES[i] for i in y]
    model = SpeechEmotionModel.fit(xp, labels, l2, weight, full, classifier=recipe["classifier"])
    model.temperature = temperature
    model.recipe["reference_log"] = np.log(model.predict_proba(xp) + 1e-9).mean(axis=0).round(5).tolist()
    return model


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, default=POOL)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--only",
        help="only the candidates whose FEATURES/CLASSIFIER/WEIGHTING starts with this "
        "(window: what the pipeline computes; window/mlp/speaker+corpus: the shipped recipe)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    rows, left_out = load_pool(args.pool)
    y = np.array([EMOTION_CLASSES.index(r["target"]) for r in rows])
    speakers = np.array([r["speaker"] for r in rows])
    corpora = np.array([r["dataset"] for r in rows])
    chosen = [c for c in CANDIDATES if args.only is None or recipe_name(c).startswith(args.only)]
    names = sorted({p for c in chosen for p in c["features"].split("+")})
    parts = part_features(names, rows, args.pool, args.out)
    audio_s = float(parts[names[0]]["audio_s"])
    cost = {f"{p}_s_per_audio_s": round(float(parts[p]["seconds"]) / audio_s, 4) for p in names}
    cost.update(audio_s=round(audio_s, 1), clips=len(rows), threads=1)
    print(json.dumps(cost), flush=True)

    candidates = []
    for cand in chosen:
        t0 = time.perf_counter()
        x = feature_matrix(parts, cand["features"])
        cv = nested_cv(x, y, speakers, corpora, cand, args.folds)
        figs = corpus_figures(cv["logits"], cv["temperature"], y, corpora, speakers)
        row = {"recipe": cand, "dim": x.shape[1], **{c: figs[c]["top1"] for c in CORPORA},
               "mean_top1": figs["mean_top1"], "l2_chosen": cv["l2"], "figures": figs}  # fmt: skip
        candidates.append(row)
        brief = {k: v for k, v in row.items() if k != "figures"}
        print(json.dumps(brief), f"{time.perf_counter() - t0:.0f} s", flush=True)

    best = max((r for r in candidates if r["recipe"]["eligible"]), key=lambda r: r["mean_top1"])
    recipe = best["recipe"]
    x = feature_matrix(parts, recipe["features"])
    cc = cross_corpus(x, y, speakers, corpora, recipe)
    model = final_model(x, y, speakers, corpora, recipe, args.folds, left_out)
    # The temperature that calibrates the model on a corpus it never heard (fitted on the
    # cross-corpus predictions): the voice's confidence on new kinds of speech.
    model.recipe["temperature_new_corpus"] = round(fit_temperature(cc["logits"], y, allowed_rows(corpora)), 4)
    model_path = args.out / "speech_emotion.npz"
    model.save(model_path)
    blob = model_path.read_bytes()
    figures = {
        "pool": str(args.pool),
        "left_out": left_out,
        "cost": cost,
        "folds": args.folds,
        "candidates": [{k: v for k, v in r.items() if k != "figures"} | {
            c: {k: r["figures"][c][k] for k in ("top1", "uar", "speaker_mean_top1")} for c in CORPORA}
            for r in candidates],
        "chosen": recipe,
        "cv": best["figures"],
        "cross_corpus": corpus_figures(cc["logits"], cc["temperature"], y, corpora, speakers),
        "model": {"path": str(model_path), "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
                  "l2": model.recipe.get("l2"), "temperature": round(model.temperature, 4),
                  "temperature_new_corpus": model.recipe["temperature_new_corpus"],
                  "l2_cv": model.recipe["l2_cv"]},
    }  # fmt: skip
    text = json.dumps(figures, indent=1)
    (args.out / "figures.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    for name in ("cv", "cross_corpus"):
        print(name, {c: figures[name][c]["top1"] for c in CORPORA}, "ECE", figures[name]["ece_raw_all"],
              "->", figures[name]["ece_temperature_all"])  # fmt: skip
    print(json.dumps(figures["model"]))


if __name__ == "__main__":
    main()
