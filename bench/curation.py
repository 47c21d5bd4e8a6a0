"""Does curation make the generator better? A generator trained on everything a crawl brings,
one trained on what ``curate`` accepts, and one trained on the clean pool, on the same budget.

    python -m bench.curation --work DIR [--seeds 3] [--share 0.3] [--json docs/bench/curation.json] [--plot F]

1. **A crawl.** The pool's training recordings (``docs/pool/train.csv``) plus corrupted copies
   making a seeded ``--share`` of the mixture (30%), one corruption each, in turn: audio shifted 5-15 frames,
   foreign audio (another training speaker's), a generated talking head from
   ``../shared/pool/generated/`` in place of the recording, a second face beside the first, no
   face (a black picture over the speech), a long silence (audio muted after 1 s), a re-encoded
   duplicate (half size, CRF 32). Each copy keeps its source's speaker id, so every split holds a
   speaker's copies with the speaker. Test: the pool's test speakers (``docs/pool/test.csv``),
   never corrupted.
2. ``curate run`` over it all (``[segment] min_clip_s = 1.0``, ``[face] mirror_average``: the
   settings of docs/generator.md), then three exports with the same speaker split:
   ``everything`` (every rule off), ``clean`` (every rule off, the uncorrupted recordings only:
   the upper bound), ``curated`` (the default filters: what is accepted) and ``reviewed`` (the
   accepted clips plus the clips in review as a reviewer who knows the crawl would judge them:
   clean ones accepted, corrupted ones rejected).
3. The generator trained on each with the default recipe (600 steps of 32 windows: the same
   budget) and ``--seeds`` seeds; every model evaluated on one test set, the curated export's
   test split (the pool's test speakers' accepted clips), and on the fixtures' accepted clips.

Every stage's output is kept under ``DIR`` and reused by a rerun, so a stopped run resumes.
Prints per variant the mean and spread over seeds of the phonetic-channel error (PVE_BS) and its
ratio to the clip median pose, lip-aperture correlation and closures within +-1 frame.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
POOL = Path(os.environ.get("CURATE_POOL", REPO.parent / "shared" / "pool"))
FIXTURES = Path(os.environ.get("CURATE_FIXTURES", REPO.parent / "shared" / "fixtures"))
SHARE = 0.30
KINDS = ("shift", "foreign", "generated", "second_face", "no_face", "silence", "reencode")
VARIANTS = ("everything", "curated", "reviewed", "clean")
RUN_CONFIG = "[segment]\nmin_clip_s = 1.0\n[face]\nmirror_average = true\n"
METRICS = ("PVE_BS", "PVE_ratio", "LVE_ratio", "lag_corr", "closures", "lag_frames")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-v", "error", *args], check=True)


def corrupt(kind: str, src: Path, other: Path, generated: Path, out: Path, rng: random.Random) -> str:
    """Write the ``kind`` corruption of ``src`` to ``out``; returns what was done, in words."""
    if kind == "shift":
        frames = rng.randint(5, 15)
        ffmpeg("-i", str(src), "-itsoffset", f"{frames / 30:.4f}", "-i", str(src), "-map", "0:v", "-map", "1:a",
               "-c:v", "copy", "-c:a", "aac", "-shortest", str(out))  # fmt: skip
        return f"audio {frames} frames late"
    if kind == "foreign":
        ffmpeg("-i", str(src), "-i", str(other), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
               "-shortest", str(out))  # fmt: skip
        return f"audio of {other.name}"
    if kind == "generated":
        shutil.copyfile(generated, out)
        return f"generated: {generated.name}"
    if kind == "second_face":
        seconds = float(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(src)],
            capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
        ffmpeg("-i", str(src), "-stream_loop", "-1", "-i", str(other), "-filter_complex",
               "[0:v]scale=480:480,setsar=1,fps=25[a];[1:v]scale=480:480,setsar=1,fps=25[b];[a][b]hstack[v]",
               "-map", "[v]", "-map", "0:a", "-c:a", "aac", "-t", f"{seconds:.3f}", str(out))  # fmt: skip
        return f"beside {other.name}"
    if kind == "no_face":
        ffmpeg("-i", str(src), "-vf", "drawbox=t=fill:c=black", "-c:a", "copy", str(out))
        return "black picture"
    if kind == "silence":
        ffmpeg("-i", str(src), "-af", "volume=enable='gte(t,1)':volume=0", "-c:v", "copy", str(out))
        return "muted after 1 s"
    ffmpeg("-i", str(src), "-vf", "scale=trunc(iw/4)*2:-2", "-crf", "32", "-c:a", "aac", str(out))
    return "re-encoded, half size"


def crawl(work: Path, share: float) -> Path:
    """The training list with corrupted copies making ``share`` of it (``work/crawl.csv``), made once."""
    listing = work / "crawl.csv"
    if listing.exists():
        return listing
    train = list(csv.DictReader((REPO / "docs/pool/train.csv").open()))
    for row in train:
        row["uri"] = str((REPO / "docs/pool" / row["uri"]).resolve())
    generated = [
        (REPO / "docs/pool" / r["uri"]).resolve()
        for r in csv.DictReader((REPO / "docs/pool/generated.csv").open())
        if r["generated"] == "yes"
    ]
    rng = random.Random(29)
    n = round(share * len(train) / (1 - share))
    media = work / "corrupt"
    media.mkdir(parents=True, exist_ok=True)
    rows = [{**r, "corruption": "", "detail": ""} for r in train]
    for k, src in enumerate(rng.sample(train, n)):
        kind = KINDS[k % len(KINDS)]
        other = rng.choice([r for r in train if r["speaker_id"] != src["speaker_id"]])
        out = media / f"{kind}__{Path(src['uri']).stem}.mp4"
        detail = corrupt(kind, Path(src["uri"]), Path(other["uri"]), rng.choice(generated), out, rng)
        rows.append({**src, "uri": str(out), "corruption": kind, "detail": detail})
        print(f"  {out.name}: {detail}", flush=True)
    with listing.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["uri", "speaker_id", "split", "corruption", "detail"])
        writer.writeheader()
        writer.writerows(rows)
    return listing


def curate(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "curate.cli", *args], check=True)


def exports(work: Path, listing: Path) -> dict[str, Path]:
    """Run, filter and export the three variants (each stage skipped when done)."""
    root, config = work / "root", work / "run.toml"
    config.write_text(RUN_CONFIG)
    off = work / "off.toml"
    rules = "\n".join(f"[filter.rules.{name}]\nenabled = false" for name in _rule_names())
    off.write_text(RUN_CONFIG + '[filter]\nduplicates = "off"\n' + rules + "\n")
    if not (work / "run.done").exists():
        curate("run", str(listing), str(REPO / "docs/pool/test.csv"), "--out", str(root), "--config", str(config),
               "--no-progress")  # fmt: skip
        (work / "run.done").touch()
    split = ["--group", "v.source_tags['speaker_id']", "--test-where", "v.source_tags['split'] = 'test'",
             "--val", "0.15", "--no-progress"]  # fmt: skip
    paths = {v: root / "exports" / v for v in VARIANTS}
    if not paths["clean"].exists():
        curate("filter", str(root), "--config", str(off))
        curate("export", str(root), "--name", "everything", *split)
        curate("export", str(root), "--name", "clean", "--where",
               "coalesce(v.source_tags['corruption'], '') = ''", *split)  # fmt: skip
    if not paths["curated"].exists():
        curate("filter", str(root), "--config", str(config))
        curate("export", str(root), "--name", "curated", *split)
    if not paths["reviewed"].exists():
        review_by_truth(root)
        curate("export", str(root), "--name", "reviewed", *split)
    fixtures = work / "fixtures"
    if not (fixtures / "exports" / "all").exists():
        curate(
            "run", str(FIXTURES / "video"), "--out", str(fixtures), "--config", str(config), "--no-progress"
        )
        curate("filter", str(fixtures), "--config", str(config))
        curate(
            "export", str(fixtures), "--name", "all", "--test-where", "true", "--val", "0", "--no-progress"
        )
    paths["fixtures"] = fixtures / "exports" / "all"
    return paths


def review_by_truth(root: Path) -> int:
    """A reviewer who knows the crawl: every clip in review is accepted when its recording is not
    a corrupted copy and rejected when it is, appended as review decisions; returns how many."""
    import datetime as dt

    from curate.query import query
    from extractors.registry import dataset_schemas
    from manifests.store import DatasetRoot

    waiting = query(
        root,
        "select d.clip_id, coalesce(v.source_tags['corruption'], '') corruption from current_decisions d"
        " join clips c using (clip_id) join videos v on v.video_id = c.video_id where d.verdict = 'review'",
    ).to_pylist()
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"clip_id": r["clip_id"], "verdict": "reject" if r["corruption"] else "accept", "reasons": [],
         "source": "review", "who": "reviewer who knows the crawl", "decided_at": now, "confidence": 1.0,
         "annotators": 1, "decision_set": "bench-review"}
        for r in waiting
    ]  # fmt: skip
    DatasetRoot(root).write_part("decisions", "bench-review", rows, dataset_schemas()["decisions"])
    return len(rows)


def _rule_names() -> list[str]:
    from extractors.registry import make_config

    return sorted(make_config().filter.rules)


def summary_of(table: Any) -> dict[str, float | None]:
    model, median = table.rows["model + clip neutral"], table.rows["clip median pose"]
    return {
        "PVE_BS": model["PVE_BS"],
        "PVE_ratio": model["PVE_BS"] / median["PVE_BS"],
        "LVE_ratio": model["LVE_BS"] / median["LVE_BS"],
        "lag_corr": model["lag_corr"],
        "closures": model["closures"],
        "lag_frames": model["lag_frames"],
    }


def train_and_eval(paths: dict[str, Path], work: Path, seeds: int, steps: int) -> dict[str, Any]:
    from generator.config import TrainConfig
    from generator.evaluate import evaluate
    from generator.train import train

    results: dict[str, Any] = {"runs": [], "reference": {}}
    for variant in VARIANTS:
        for seed in range(seeds):
            run_dir = work / "runs" / f"{variant}-{seed}"
            train(paths[variant], run_dir, TrainConfig(seed=seed, steps=steps, device="cpu"))
            for test_set, export in (("pool test", paths["curated"]), ("fixtures", paths["fixtures"])):
                table = evaluate(run_dir, "test", export)
                row = {"variant": variant, "seed": seed, "test": test_set, **summary_of(table)}
                results["runs"].append(row)
                results["reference"].setdefault(test_set, {
                    "clips": table.clips, "seconds": round(table.seconds, 1),
                    **{name: table.rows[name] for name in ("clip median pose", "truth +2 frames")},
                })  # fmt: skip
                print(json.dumps(row), flush=True)
    return results


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds, per variant and test set."""
    table = []
    for test_set in ("pool test", "fixtures"):
        for variant in VARIANTS:
            rows = [r for r in runs if r["variant"] == variant and r["test"] == test_set]
            if not rows:
                continue
            entry: dict[str, Any] = {"test": test_set, "variant": variant, "seeds": len(rows)}
            for m in METRICS:
                values = [r[m] for r in rows if r[m] is not None]
                entry[m] = round(float(np.mean(values)), 4) if values else None
                entry[m + "_sd"] = round(float(np.std(values)), 4) if values else None
            table.append(entry)
    return table


def plot(table: list[dict[str, Any]], out: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4))
    for ax, (metric, label) in zip(
        fig.subplots(1, 3),
        (
            ("PVE_ratio", "phonetic error / clip median"),
            ("lag_corr", "lip-aperture correlation"),
            ("closures", "closures within ±1 frame"),
        ),
        strict=True,
    ):
        rows = [r for r in table if r["test"] == "pool test"]
        ax.bar([r["variant"] for r in rows], [r[metric] for r in rows], yerr=[r[metric + "_sd"] for r in rows],
               color=["#c62828", "#2e7d32", "#ef6c00", "#1565c0"][: len(rows)], capsize=4)  # fmt: skip
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(
        "Generator on the pool's test speakers, by training data (mean ± sd over seeds)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="working folder (kept; a rerun resumes)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--share", type=float, default=SHARE, help="share of corrupted copies in the crawl (<= 0.5)"
    )
    parser.add_argument("--steps", type=int, default=600, help="training steps of every model (the budget)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not 0 < args.share <= 0.5:
        parser.error("--share must be in (0, 0.5]: each training recording is corrupted once at most")
    listing = crawl(args.work, args.share)
    paths = exports(args.work, listing)
    results = train_and_eval(paths, args.work, args.seeds, args.steps)
    results["table"] = aggregate(results["runs"])
    results["machine"] = platform.platform()
    results["share"] = args.share
    results["crawl"] = {
        kind: sum(1 for r in csv.DictReader(listing.open()) if r["corruption"] == kind) for kind in KINDS
    }
    for entry in results["table"]:
        print(
            f"{entry['test']:<10} {entry['variant']:<11} PVE {entry['PVE_BS']:.4f} (x{entry['PVE_ratio']:.3f} ± "
            f"{entry['PVE_ratio_sd']:.3f} clip median)  corr {entry['lag_corr']:.3f} ± {entry['lag_corr_sd']:.3f}"
            f"  closures {entry['closures']:.3f} ± {entry['closures_sd']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.plot:
        plot(results["table"], args.plot)


if __name__ == "__main__":
    main()
