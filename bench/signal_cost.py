"""Cost of the signals per second of video, this checkout against an earlier commit, in one run.

    python -m bench.signal_cost [--baseline REV] [--json F]

Each extractor's isolated cost on one core (:func:`bench.bound.extractor_costs`: seconds of one
core per second of video, media decoded once) over the speaking fixture videos, measured here
and in a temporary ``git worktree`` of ``REV`` (default ``680b181``: before face tracks and
identity), alternately, twice each, the lower kept; printed as this checkout's figures and their
ratio to the baseline's. Run it on an otherwise idle machine: the figures are wall seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.throughput import SPEAKING

ROOT = Path(__file__).resolve().parents[1]
#: Measures extractor_costs over the videos named on its command line, in the checkout it runs
#: in (its working folder); prints JSON.
_MEASURE = """
import json, sys
from pathlib import Path
from bench.bound import extractor_costs
from extractors.registry import make_config
print(json.dumps(extractor_costs([Path(p) for p in sys.argv[1:]], make_config())))
"""


def measure(checkout: Path, videos: list[Path]) -> dict[str, float]:
    """Seconds of one core per second of video, per extractor and ``total``, of ``checkout``."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, videos)],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"measuring {checkout} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="680b181")
    parser.add_argument("--fixtures", type=Path, default=ROOT.parent / "shared" / "fixtures" / "video")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            videos = [args.fixtures / name for name in SPEAKING]
            rounds = [(measure(ROOT, videos), measure(base, videos)) for _ in range(2)]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    now = {k: min(r[0][k] for r in rounds) for k in rounds[0][0]}
    before = {k: min(r[1][k] for r in rounds) for k in rounds[0][1]}
    figures: dict[str, Any] = {
        "baseline": args.baseline,
        "now_core_s_per_video_s": now,
        "baseline_core_s_per_video_s": before,
        "ratio": {k: now[k] / before[k] for k in now if k in before and before[k] > 0},
        "new": {k: now[k] for k in now if k not in before},
    }
    for name, value in now.items():
        ratio = figures["ratio"].get(name)
        print(
            f"{name:<12} {value:7.3f} core-s per video-s"
            + (f"  x{ratio:.3f} of {args.baseline}" if ratio else "  (new)")
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
