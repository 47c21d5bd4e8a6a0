"""Several annotators per clip against a real Label Studio server: three annotator accounts made
through the API label 30 clips with known truth (and 15 gold clips) at error rates of 5%, 15%
and 40%; pull aggregates, measures each annotator on gold, flags the careless one and computes
Krippendorff's alpha. Then the uncertainty queue: the least certain clip is served first."""

from __future__ import annotations

import math
import random
import secrets

import krippendorff
import pytest
import requests

from extractors.registry import dataset_schemas
from manifests.store import DatasetRoot
from review.aggregate import majority
from review.annotators import VERDICTS, triples
from review.gold import add_gold
from review.project import MODEL_VERSION, ensure_project
from review.pull import pull
from review.push import task
from settings.config import ReviewConfig

RATES = {"ann-a@example.com": 0.05, "ann-b@example.com": 0.15, "ann-c@example.com": 0.40}
N_CLIPS, N_GOLD = 30, 15


def clip_row(clip_id: str) -> dict:
    return {"clip_id": clip_id, "uri": f"/media/{clip_id}.mp4", "start_s": 0.0, "end_s": 2.0,
            "reasons": ["little_speech"], "speech_ratio": 0.5}  # fmt: skip


def make_root(path, clip_ids: list[str]) -> DatasetRoot:
    root = DatasetRoot(path)
    rows = [{"clip_id": c, "video_id": "v-" + c} for c in clip_ids]
    root.write_part("clips", "annotators", rows, dataset_schemas()["clips"])
    return root


def import_tasks(client, config: ReviewConfig, files_root, margins: dict[str, float]) -> list[dict]:  # type: ignore[no-untyped-def]
    pid = ensure_project(client, config, files_root / config.project.replace(" ", "_"))
    client.import_tasks(pid, [task(clip_row(c), "/no-video", "/no-curves", m) for c, m in margins.items()])
    return list(client.tasks(pid))


def verdict(result: str) -> list[dict]:
    return [{"from_name": "verdict", "to_name": "video", "type": "choices", "value": {"choices": [result]}}]


def annotator(client, email: str) -> int:  # type: ignore[no-untyped-def]
    made = client.sdk.users.create(
        username=email.split("@")[0], email=email, password=secrets.token_urlsafe(12)
    )
    return int(made.id)


def test_three_annotators_are_aggregated_measured_on_gold_and_flagged(label_studio, tmp_path) -> None:
    client = label_studio.client()
    rng = random.Random(28)
    clips = [f"clip-{i:02d}" for i in range(N_CLIPS)]
    gold_clips = [f"gold-{i:02d}" for i in range(N_GOLD)]
    truth = {c: rng.choices(VERDICTS, weights=(0.6, 0.4))[0] for c in clips + gold_clips}
    root = make_root(tmp_path / "root", clips + gold_clips)
    assert add_gold(root.path, {c: truth[c] for c in gold_clips}, "user") == N_GOLD
    config = ReviewConfig(
        url=label_studio.url, project="review annotators", annotators_per_clip=3, max_annotators=3
    )
    tasks = import_tasks(
        client, config, label_studio.files_root, {c: rng.random() for c in clips + gold_clips}
    )
    project = client.project(tasks[0]["project"])
    # set at creation and read back (an SDK bug once left maximum_annotations at 1 until an update)
    assert project["maximum_annotations"] == 3 and project["sampling"] == "Uncertainty sampling"
    assert project["model_version"] == MODEL_VERSION and {t["overlap"] for t in tasks} == {3}

    # Each annotator errs on exactly their rate of the clips and of the gold clips.
    for email, rate in RATES.items():
        who = annotator(client, email)
        wrong = set(rng.sample(clips, round(rate * N_CLIPS))) | set(
            rng.sample(gold_clips, round(rate * N_GOLD))
        )
        for t in tasks:
            clip = t["data"]["clip_id"]
            given = truth[clip] if clip not in wrong else next(v for v in VERDICTS if v != truth[clip])
            client.sdk.annotations.create(id=t["id"], result=verdict(given), completed_by=who)

    summary = pull(root.path, client, config)
    state = summary.state
    assert summary.pulled == 3 * (N_CLIPS + N_GOLD) and len(state.annotations) == 3 * (N_CLIPS + N_GOLD)
    assert {r["who"] for r in state.annotations} == set(RATES)
    right = sum(state.aggregation.items[c].label == truth[c] for c in clips) / N_CLIPS
    by_majority = majority(triples(state.annotations), VERDICTS)
    right_majority = sum(by_majority.items[c].label == truth[c] for c in clips) / N_CLIPS
    print(f"aggregate right on {right:.3f} of clips, majority vote {right_majority:.3f}")
    assert right >= right_majority and right >= 0.9

    stats = {a.who: a for a in state.annotators}
    assert {w for w, a in stats.items() if a.flagged} == {"ann-c@example.com"}
    for who, rate in RATES.items():
        assert stats[who].gold_seen == N_GOLD
        assert abs(stats[who].gold_accuracy - (1 - rate)) <= 0.10
    # alpha is the reference package's on the same annotator x clip matrix
    given = {(r["who"], r["clip_id"]): VERDICTS.index(r["verdict"]) for r in state.annotations}
    matrix = [[given.get((w, c), math.nan) for c in clips + gold_clips] for w in RATES]
    assert state.alpha == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    )
    assert set(state.alpha_by_reason) == {"(none)"}  # these clips had no filter run

    # one review verdict per non-gold clip, gold stays current; a second pull appends nothing
    from curate.query import query

    current = query(
        root.path,
        "select source, count(*) n, min(confidence) lo from current_decisions group by 1 order by 1",
    ).to_pylist()
    assert [(r["source"], r["n"]) for r in current] == [("gold", N_GOLD), ("review", N_CLIPS)]
    again = pull(root.path, client, config)
    assert again.pulled == 0 and again.decision_set is None


def test_the_uncertainty_queue_serves_the_least_certain_clip_first(label_studio, tmp_path) -> None:
    client = label_studio.client()
    rng = random.Random(5)
    margins = {f"queue-{i:02d}": rng.random() for i in range(12)}  # how borderline each clip is
    config = ReviewConfig(url=label_studio.url, project="review queue order")
    tasks = import_tasks(client, config, label_studio.files_root, margins)
    clip_of = {t["id"]: t["data"]["clip_id"] for t in tasks}
    # Label Studio serves at random among the (annotators + 1) least certain, so that several
    # annotators do not collide on one task
    window = len(client.users()) + 1
    auth = {"Authorization": f"Token {label_studio.credentials.token}"}
    left = dict(margins)
    served = []
    for _ in range(len(margins)):
        got = requests.get(
            f"{label_studio.url}/api/projects/{tasks[0]['project']}/next", headers=auth, timeout=30
        )
        assert got.status_code == 200, got.text
        clip = clip_of[got.json()["id"]]
        most_borderline = sorted(left, key=lambda c: -left[c])
        assert clip in most_borderline[:window], (clip, most_borderline)
        served.append(clip)
        del left[clip]
        client.sdk.annotations.create(id=got.json()["id"], result=verdict("accept"))
    assert sorted(served) == sorted(margins)
