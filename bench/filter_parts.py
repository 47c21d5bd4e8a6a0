"""`curate filter` by parts against one job in its own process, on the same roots in the same run.

    python -m bench.filter_parts ROOT [ROOT ...] [--workers 1 2] [--json F]

Per root (e.g. the roots ``bench.scale`` builds, kept with ``--work``): ``curate filter`` as one
job in this process (``[filter] parts_per_job`` above the root's clips parts, the baseline), then
by parts on a local Ray cluster of each ``--workers`` size (``parts_per_job`` 64, the default).
Each appends a decision set; the near-duplicate index is brought up to date once before the
timings, so every timing does the same work. Reports seconds, the peak memory of the process
tree (Ray's processes included), and each time as a ratio to the baseline; the verdict counts
must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from bench.peak import Peak
from bench.scale import _timed
from curate.filter import apply_filters
from extractors.registry import make_config
from manifests.store import DatasetRoot
from settings.config import Config, RayConfig, RunConfig


def measure(root: Path, config: Config) -> dict[str, Any]:
    with Peak() as peak:
        summary, seconds = _timed(lambda: apply_filters(root, config))
    return {
        "seconds": seconds,
        "peak_mb": peak.rss_mb,
        "verdicts": summary.verdicts,
        "nodes": summary.jobs_by_node,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for root in args.roots:
        parts = len(DatasetRoot(root).readable_rels("clips"))
        whole = make_config(run=RunConfig(executor="sequential"), filter={"parts_per_job": max(parts, 1)})
        apply_filters(root, whole)  # the index up to date: every timing below only reads it
        figures: dict[str, Any] = {"root": str(root), "clips_parts": parts, "one_job": measure(root, whole)}
        for workers in args.workers:
            config = make_config(ray=RayConfig(workers=workers))
            figures[f"ray_{workers}"] = measure(root, config)
            assert figures[f"ray_{workers}"]["verdicts"] == figures["one_job"]["verdicts"]
        base = figures["one_job"]["seconds"]
        figures["time_over_one_job"] = {
            f"ray_{w}": figures[f"ray_{w}"]["seconds"] / base for w in args.workers
        }
        results.append(figures)
        print(json.dumps(figures), flush=True)
    if args.json:
        machine = f"{platform.machine()}, {os.cpu_count()} cores"
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
