"""How well several annotators' verdicts are aggregated, on simulated annotator panels that no
test uses: Dawid–Skene (the project's default) against majority vote, with and without sending
disagreeing clips back for one more annotator, and how well annotators are measured and flagged.

    python -m bench.review_aggregation [--reps 200] [--json F]

Each panel is a list of annotators with an error rate (a "lenient" one errs only by accepting
what should be rejected). Each repetition draws the truth of 30 review clips (60% accept) and
15 gold clips, the first ``annotators_per_clip`` annotators label every clip, and with re-queue a
clip whose annotators disagree (``review.aggregate.disagree``) gets the next annotator of the
panel, up to ``max_annotators``, as ``curate review pull`` does. Figures are means over the
repetitions: share of review clips right, annotations per clip, share of repetitions where the
flagged annotators are exactly the careless ones (true accuracy below ``min_annotator_accuracy``),
share of annotators whose accuracy on the 15 gold clips is within 10 points of their true one.
Every annotator meets the gold clips (they are mixed into everyone's queue).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
from dataclasses import dataclass

import numpy as np

from review.aggregate import AGGREGATORS, disagree
from review.annotators import VERDICTS, annotator_stats, triples

N_CLIPS, N_GOLD = 30, 15
MIN_ACCURACY = 0.75  # [review] min_annotator_accuracy's default
AGREE = 0.9  # [review] agree_confidence's default


@dataclass(frozen=True)
class Annotator:
    who: str
    error: float
    lenient: bool = False  # errs only on clips that should be rejected

    def label(self, truth: str, rng: random.Random) -> str:
        if self.lenient:
            return "accept" if truth == "reject" and rng.random() < 2 * self.error else truth
        return truth if rng.random() >= self.error else next(v for v in VERDICTS if v != truth)


PANELS = {
    "issue: 5/15/40%": [Annotator("a", 0.05), Annotator("b", 0.15), Annotator("c", 0.40)],
    "five: 5/15/40/10/20%": [
        Annotator("a", 0.05), Annotator("b", 0.15), Annotator("c", 0.40), Annotator("d", 0.10), Annotator("e", 0.20)
    ],
    "even: 10/10/10/10/10%": [Annotator(w, 0.10) for w in "abcde"],
    "lenient: 5/15/lenient 30/10/20%": [
        Annotator("a", 0.05), Annotator("b", 0.15), Annotator("c", 0.30, lenient=True), Annotator("d", 0.10),
        Annotator("e", 0.20),
    ],
}  # fmt: skip


def one_repetition(
    panel: list[Annotator], method: str, requeue: bool, rng: random.Random
) -> dict[str, float]:
    clips = [f"c{i}" for i in range(N_CLIPS)] + [f"g{i}" for i in range(N_GOLD)]
    truth = {c: rng.choices(VERDICTS, weights=(0.6, 0.4))[0] for c in clips}
    gold = {c: truth[c] for c in clips if c.startswith("g")}
    # every annotator meets the gold clips mixed into the queue; the first three label every clip
    rows = [{"clip_id": c, "who": a.who, "verdict": a.label(truth[c], rng)} for c in gold for a in panel]
    rows += [
        {"clip_id": c, "who": a.who, "verdict": a.label(truth[c], rng)}
        for c in clips
        if c not in gold
        for a in panel[:3]
    ]
    aggregation = AGGREGATORS[method](triples(rows), VERDICTS, gold)
    max_annotators = len(panel) if requeue else 3
    for extra in panel[3:max_annotators]:
        wanting = [
            c
            for c in clips
            if c not in gold
            and disagree({r["verdict"] for r in rows if r["clip_id"] == c}, aggregation.items[c], AGREE)
        ]
        rows += [{"clip_id": c, "who": extra.who, "verdict": extra.label(truth[c], rng)} for c in wanting]
        aggregation = AGGREGATORS[method](triples(rows), VERDICTS, gold)
    stats = annotator_stats(rows, gold, aggregation, MIN_ACCURACY)
    # a lenient annotator errs on 2 x error of the rejects, 40% of clips: 0.8 x error overall
    true_accuracy = {a.who: 1 - (a.error * 0.8 if a.lenient else a.error) for a in panel}
    careless = {who for who, accuracy in true_accuracy.items() if accuracy < MIN_ACCURACY}
    gaps = [abs(s.gold_accuracy - true_accuracy[s.who]) for s in stats if s.gold_accuracy is not None]
    return {
        "right": sum(aggregation.items[c].label == truth[c] for c in clips if c not in gold) / N_CLIPS,
        "annotations_per_clip": sum(1 for r in rows if r["clip_id"] not in gold) / N_CLIPS,
        "flags_exact": float({s.who for s in stats if s.flagged} == careless),
        "gold_within_10": sum(g <= 0.10 for g in gaps) / len(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    print(
        f"{'panel':<34} {'method':<12} {'requeue':<7} {'right':>6} {'per clip':>8} {'flags ok':>8} {'gold ±10':>8}"
    )
    for name, panel in PANELS.items():
        for requeue in (False, True) if len(panel) > 3 else (False,):
            for method in AGGREGATORS:
                rng = random.Random(f"{name}:{method}:{requeue}")
                reps = [one_repetition(panel, method, requeue, rng) for _ in range(args.reps)]
                row = {"panel": name, "method": method, "requeue": requeue}
                row |= {k: round(float(np.mean([r[k] for r in reps])), 4) for k in reps[0]}
                results.append(row)
                print(
                    f"{name:<34} {method:<12} {requeue!s:<7} {row['right']:>6.3f} {row['annotations_per_clip']:>8.2f}"
                    f" {row['flags_exact']:>8.2f} {row['gold_within_10']:>8.2f}"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "reps": args.reps, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
