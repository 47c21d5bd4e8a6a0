"""The synthetic-face score on the pool: each cue and the score per generator family, the
reference it ships (``extractors.synthetic.extractor.REFERENCE``), and its cost.

    curate run docs/pool/train.csv docs/pool/test.csv docs/pool/generated.csv -o R -c F.toml
    # F.toml: [run] extractors = ["face"] (the cues are measured here)
    python -m bench.synthetic R [--json F]

Cues are measured again here from R's face tracks and the source media (any ``[run]
extractors`` with ``face`` will do), so a changed cue is measured without a new run. Labels come
from the source tags the lists set: ``generated`` (yes: generated), ``family`` (generator
family) and ``split`` (the real recordings' speaker-disjoint split). The reference (each cue's
log mean and spread) is fitted on the real training recordings only; the calibration on those
against every generated clip. The cues and their signs were chosen by looking at all families
(docs/scores.md says which were tried), but nothing fitted depends on a family's clips except the
calibration, a monotone map that moves no ranking: so a family's AUC and the share caught at the
review threshold are what a family never seen would get.

Cost: the cue measurement's time per second of video, and as a ratio to decoding the same
clips at the track rate in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from curate.query import query
from extractors.base import ClipRef
from extractors.registry import make_config
from extractors.sync.training import auc
from extractors.synthetic.extractor import CUES, SyntheticExtractor
from ingest.media import iter_frames_at_rate

#: Share of real training recordings the review threshold lets through.
REAL_KEPT = 0.97


def logistic(x: np.ndarray, y: np.ndarray, steps: int = 4000, lr: float = 0.1) -> tuple[float, float]:
    """Slope and intercept of a one-input logistic regression, classes weighted equally."""
    weight = np.where(y, 0.5 / y.sum(), 0.5 / (~y).sum()) * len(y)
    slope, intercept = 0.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(slope * x + intercept)))
        g = (p - y) * weight
        slope -= lr * float(np.mean(g * x))
        intercept -= lr * float(np.mean(g))
    return slope, intercept


def measure(root: Path) -> tuple[list[dict[str, Any]], float, float, float]:
    """Each clip's cues and labels; seconds spent on cues, on plain decoding, and video seconds."""
    extractor = SyntheticExtractor(make_config())
    rows = query(
        root,
        """select v.uri, v.source_tags tags, c.clip_id, c.start_s, c.end_s, c.fps, t.face_box, t.blendshapes
           from clips c join videos v using (video_id) join tracks t using (clip_id) order by c.clip_id""",
    ).to_pylist()
    clips, spent, decoding, seconds = [], 0.0, 0.0, 0.0
    for row in rows:
        if sum(b is not None for b in row["face_box"] or []) < 30:
            continue
        ref = ClipRef(Path(row["uri"]), "v", row["clip_id"], row["start_s"], row["end_s"], row["fps"], False)
        began = time.process_time()
        values = extractor.cues(ref, row["face_box"], row["blendshapes"])
        middle = time.process_time()
        for _ in iter_frames_at_rate(ref.path, ref.start_s, ref.end_s, ref.fps, only=set()):
            pass
        spent += middle - began
        decoding += time.process_time() - middle
        seconds += row["end_s"] - row["start_s"]
        if values is None:
            continue
        tags = dict(row["tags"] or {})
        clips.append(
            {
                "uri": row["uri"],
                "values": values,
                "generated": tags.get("generated") == "yes",
                "family": tags.get("family", "real") if tags.get("generated") == "yes" else "real",
                "split": tags.get("split", "train"),
            }
        )
    return clips, spent, decoding, seconds


def figures(clips: list[dict[str, Any]]) -> dict[str, Any]:
    logs = np.log(np.asarray([c["values"] for c in clips]) + 1e-6)
    generated = np.asarray([c["generated"] for c in clips])
    family = np.asarray([c["family"] for c in clips])
    train_real = ~generated & (np.asarray([c["split"] for c in clips]) != "test")
    test_real = ~generated & ~train_real
    mean, std = logs[train_real].mean(axis=0), logs[train_real].std(axis=0)
    z = -(logs - mean) / std
    score = z.mean(axis=1)
    slope, intercept = logistic(score[train_real | generated], generated[train_real | generated])
    probability = 1 / (1 + np.exp(-(slope * score + intercept)))
    review_at = float(np.quantile(probability[train_real], REAL_KEPT))
    families = sorted(set(family[generated]))

    def against_test(values: np.ndarray, which: np.ndarray) -> float:
        keep = which | test_real
        return round(auc(values[keep & generated], values[keep & ~generated]), 3)

    return {
        "clips": {
            "real_train": int(train_real.sum()),
            "real_test": int(test_real.sum()),
            **{f: int((family == f).sum()) for f in families},
        },
        "reference": {
            "mean": [round(float(v), 3) for v in mean],
            "std": [round(float(v), 3) for v in std],
            "slope": round(slope, 3),
            "intercept": round(intercept, 3),
            "review_at": round(review_at, 3),
        },
        "cue_auc_vs_real_test": {
            cue: {
                "all": against_test(z[:, k], generated),
                **{f: against_test(z[:, k], family == f) for f in families},
            }
            for k, cue in enumerate(CUES)
        },
        "score_auc_vs_real_test": {
            "all": against_test(score, generated),
            **{f: against_test(score, family == f) for f in families},
        },
        "sent_to_review": {
            "real_train": round(float(np.mean(probability[train_real] > review_at)), 3),
            "real_test": round(float(np.mean(probability[test_real] > review_at)), 3),
            "generated": round(float(np.mean(probability[generated] > review_at)), 3),
            **{f: round(float(np.mean(probability[family == f] > review_at)), 3) for f in families},
        },
        "strongest_cue_of_generated_sent": {
            cue: int(np.sum((z.argmax(axis=1) == k) & generated & (probability > review_at)))
            for k, cue in enumerate(CUES)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="root of a run over the pool lists (see above)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clips, spent, decoding, seconds = measure(args.root)
    result = figures(clips)
    result["cost"] = {
        "cue_cpu_s_per_video_s": round(spent / seconds, 4),
        "decode_cpu_s_per_video_s": round(decoding / seconds, 4),
        "cue_over_decode": round(spent / decoding, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
