"""`curate filter` by parts: jobs on Ray workers give the verdicts of one job in this process,
their parts are committed as one set, and a failed job leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runs import copy_root

import curate.filter_parts
from curate.filter import apply_filters
from curate.query import query
from extractors.registry import make_config
from manifests.store import DatasetRoot
from settings.config import RayConfig, RunConfig


@pytest.fixture
def root(fixture_run: Any, tmp_path: Path) -> Path:
    """A copy of the fixture run (tests append decision sets)."""
    return copy_root(fixture_run.root, tmp_path / "root")


def decided(root: Path, decision_set: str) -> dict[str, tuple[Any, ...]]:
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') || '#' || c.clip_index as clip, d.verdict, d.reasons,"
        " d.duplicate_why, dv.uri as duplicate_of from decisions d join clips c using (clip_id)"
        " join videos v using (video_id) left join clips dc on dc.clip_id = d.duplicate_of"
        " left join videos dv on dv.video_id = dc.video_id"
        f" where d.decision_set = '{decision_set}'",
    ).to_pylist()
    return {
        r["clip"]: (r["verdict"], tuple(r["reasons"]), r["duplicate_of"], r["duplicate_why"]) for r in rows
    }


def test_parts_judged_on_ray_workers_give_the_verdicts_of_one_process(root: Path) -> None:
    parts = DatasetRoot(root).readable_rels("clips")
    assert len(parts) >= 2, "the fixture run commits its clips in a batch per worker"
    one = apply_filters(root, make_config(run=RunConfig(executor="sequential")))
    by_parts = apply_filters(root, make_config(filter={"parts_per_job": 1}, ray=RayConfig(workers=2)))
    assert len(list((root / "decisions").glob(f"part-{one.decision_set}-*.parquet"))) == 1
    files = list((root / "decisions").glob(f"part-{by_parts.decision_set}-*.parquet"))
    assert len(files) == len(parts), "a part of the set per job, one clips part each"
    expected = decided(root, one.decision_set)
    assert decided(root, by_parts.decision_set) == expected
    assert len(expected) == sum(DatasetRoot(root).read_parquet(p, ["clip_id"]).num_rows for p in parts)
    assert by_parts.verdicts == one.verdicts and by_parts.reasons == one.reasons
    verdict, reasons, twin, why = expected["sadtalker_WDA_AOC_000.mp4#0"]
    assert verdict == "reject" and "duplicate" in reasons and twin.endswith("/vr_face_3.mp4"), why
    assert expected["lp_driving_d20.mp4#0"][:2] == ("review", ("sync_offset",))
    current = query(root, "select distinct decision_set from current_decisions where source = 'filter'")
    assert current["decision_set"].to_pylist() == [by_parts.decision_set]


def test_a_failed_job_commits_nothing_and_leaves_no_part(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = sorted(p.name for p in (root / "decisions").iterdir())
    done: list[str] = []

    def second_fails(job: curate.filter_parts.JudgeJob) -> curate.filter_parts.Judged:
        if done:
            raise OSError("no space left on device (injected)")
        done.append(job.out)
        return curate.filter_parts.judge_part(job)

    monkeypatch.setattr("curate.filter.judge_part", second_fails)
    config = make_config(run=RunConfig(executor="sequential"), filter={"parts_per_job": 1})
    with pytest.raises(OSError, match="injected"):
        apply_filters(root, config)
    assert done and sorted(p.name for p in (root / "decisions").iterdir()) == before
    assert DatasetRoot(root).unreferenced() == []
