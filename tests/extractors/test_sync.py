"""Sync on real media: an out-of-sync copy made with a known audio delay, calibrated scores from the
shipped model (trained on the pool's training speakers, none of them in the fixtures), and the
train and eval commands, leave-one-group-out and cross-corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.media import delayed_audio_copy
from curate.query import query
from curate.run import run
from extractors.registry import make_config, model_spec
from extractors.sync.extractor import (
    BANK_FRAMES,
    DEFAULT_FEATURES,
    SyncConfig,
    SyncModel,
    feature_maker,
    score,
    speech_frames,
)
from extractors.sync.training import Judged, auc, by_band, fit_evidence, spans
from ingest.media import read_audio
from manifests.store import DatasetRoot
from settings.config import RunConfig
from settings.models import resolve

DELAY_FRAMES = 8  # at the 30 fps track rate
SPEAKING = ("vr_face_1", "vr_face_3", "vr_face_5", "r3p_May_5s", "lp_driving_d20", "sadtalker_WDA_AOC_000")
#: Another speaker's audio for each (vr_face_3 and sadtalker_WDA_AOC_000 are one recording).
FOREIGN = {
    "vr_face_1": "vr_face_5", "vr_face_3": "r3p_May_5s", "vr_face_5": "lp_driving_d20",
    "r3p_May_5s": "vr_face_1", "lp_driving_d20": "sadtalker_WDA_AOC_000", "sadtalker_WDA_AOC_000": "vr_face_5",
}  # fmt: skip


def sync_of(root) -> dict[str, dict]:
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') name, sync_offset_frames o, sync_peak_frames peak,"
        " sync_confidence z, sync_p_value p, sync_correlation r from clips join videos v using (video_id)",
    ).to_pylist()
    return {r["name"]: r for r in rows}


def verdicts(root) -> dict[str, tuple[str, list[str]]]:
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') name, d.verdict, d.reasons from current_decisions d"
        " join clips c using (clip_id) join videos v using (video_id)",
    ).to_pylist()
    return {r["name"]: (r["verdict"], r["reasons"]) for r in rows}


@pytest.mark.slow  # real models over a whole video
def test_a_delayed_audio_track_moves_the_offset_and_is_flagged(tmp_path, video) -> None:
    shifted = delayed_audio_copy(
        video("vr_face_5.mp4"), tmp_path / "media" / "vr_face_5_late.mp4", DELAY_FRAMES / 30
    )
    config = make_config(
        run=RunConfig(extractors=["face", "fingerprint", "sync"], executor="sequential", strict=True)
    )
    run([str(video("vr_face_5.mp4")), str(shifted)], tmp_path / "root", config, progress=False)
    found = sync_of(tmp_path / "root")
    original, late = found["vr_face_5.mp4"], found["vr_face_5_late.mp4"]
    assert abs(late["peak"] - original["peak"] - DELAY_FRAMES) <= 1
    # At its offset the late audio explains the mouth as well as before: strong, significant evidence.
    assert late["z"] >= 3 and late["p"] <= 0.05 and late["o"] == late["peak"]
    judged = verdicts(tmp_path / "root")
    assert "sync_offset" in judged["vr_face_5_late.mp4"][1]
    # The same recording, shifted: still a near-duplicate. The duplicate rule judges last, so the
    # in-sync original is the copy kept, and accepted; the shifted one says why it was not kept.
    assert judged["vr_face_5.mp4"] == ("accept", [])
    dup = query(
        tmp_path / "root",
        "select regexp_extract(v.uri, '[^/]+$') name, d.duplicate_why from current_decisions d"
        " join clips c using (clip_id) join videos v using (video_id) where d.duplicate_of is not null",
    ).to_pylist()
    assert [r["name"] for r in dup] == ["vr_face_5_late.mp4"]
    assert dup[0]["duplicate_why"].startswith("kept the twin judged accept by the other rules")
    assert "sync_offset" in dup[0]["duplicate_why"]


def test_speaking_fixtures_are_calibrated_in_sync_and_foreign_audio_is_not(fixture_run, video) -> None:
    """The shipped model never saw these speakers: each clip's own audio stands out of its null,
    another clip's audio does not."""
    model = SyncModel.load(resolve(model_spec("sync-default")))
    make = feature_maker(model.features, make_config().models)
    rows = fixture_run.sql(
        "select regexp_extract(v.uri, '[^/]+$') name, t.blendshapes, c.start_s, c.end_s, v.uri from tracks t"
        " join clips c using (clip_id) join videos v on v.video_id = c.video_id"
        " where cardinality(c.errors) = 0 order by name"
    )
    clips = {r["name"].split(".")[0]: r for r in rows if r["name"].split(".")[0] in SPEAKING}
    assert set(clips) == set(SPEAKING)
    audio = {k: read_audio(video(r["name"]), r["start_s"], r["end_s"]) for k, r in clips.items()}
    own, foreign = [], []
    for name, r in clips.items():
        n = len(r["blendshapes"])
        mine = score(model, model.predict(make(audio[name], 30.0, n)), r["blendshapes"], 15, 2.0)
        assert mine is not None and len(mine.curve) == 31
        own.append(mine.confidence)
        other = FOREIGN[name]
        swapped = np.resize(audio[other], len(audio[name]))
        theirs = score(model, model.predict(make(swapped, 30.0, n)), r["blendshapes"], 15, 2.0)
        assert theirs is not None
        foreign.append(theirs.confidence)
        assert theirs.offset_frames is None or theirs.confidence >= 2.0
    assert min(own) >= 3.0  # measured 3.6-7.6
    assert auc(own, foreign) == 1.0  # foreign measured -1.2-2.7
    assert sum(z >= 2.0 for z in foreign) <= 1  # a foreign track looks significant by chance, rarely


def test_a_shift_made_in_memory_moves_the_peak(fixture_run, video) -> None:
    model = SyncModel.load(resolve(model_spec("sync-default")))
    make = feature_maker(model.features, make_config().models)
    row = fixture_run.sql(
        "select t.blendshapes, c.end_s from tracks t join clips c using (clip_id) join videos v"
        " on v.video_id = c.video_id where v.uri like '%r3p_May_5s.mp4'"
    )[0]
    audio = read_audio(video("r3p_May_5s.mp4"), 0, row["end_s"])
    n = len(row["blendshapes"])
    base = score(model, model.predict(make(audio, 30.0, n)), row["blendshapes"], 15, 2.0)
    assert base is not None
    for delay in (-5, 3):
        samples = round(abs(delay) / 30 * 16_000)
        moved = (
            np.concatenate([np.zeros(samples, np.float32), audio])[: len(audio)]
            if delay > 0
            else np.concatenate([audio[samples:], np.zeros(samples, np.float32)])
        )
        result = score(model, model.predict(make(moved, 30.0, n)), row["blendshapes"], 15, 2.0)
        assert result is not None and abs(result.peak_frames - base.peak_frames - delay) <= 1


def test_the_shipped_model_says_what_it_is() -> None:
    model = SyncModel.load(resolve(model_spec("sync-default")))
    assert model.features == DEFAULT_FEATURES and model.fps == 30.0
    assert model.recipe["clips"] >= 80 and model.recipe["self_training"] == 1
    assert model.bank.shape == (64, BANK_FRAMES, len(model.channels))


def test_train_then_score_with_the_trained_file(fixture_run, tmp_path, curate, video) -> None:
    model_file = tmp_path / "mine.npz"
    done = curate("sync", "train", str(fixture_run.root), "--out", str(model_file), "--features", "log-mel")
    assert done.returncode == 0, done.stderr
    assert "7 clips" in done.stdout  # the seven speaking clips with no recorded failure
    model = SyncModel.load(model_file)
    assert model.features["kind"] == "log-mel"
    assert model.weights.shape == (15 * 40 + 1, len(model.channels))
    assert model.bank.shape[0] == 7  # each training clip's prediction is one entry of the null
    config = make_config(
        run=RunConfig(extractors=["face", "sync"], executor="sequential", strict=True),
        sync=SyncConfig(model=str(model_file)),
    )
    run([str(video("vr_face_1.mp4"))], tmp_path / "root", config, progress=False)
    found = sync_of(tmp_path / "root")["vr_face_1.mp4"]
    assert found["z"] is not None and found["r"] > 0.3  # in-sample: it learned this clip


def test_unknown_features_are_refused(tmp_path, curate) -> None:
    DatasetRoot(tmp_path).commit({})  # an empty root: the features are what is wrong
    done = curate("sync", "train", str(tmp_path), "--out", str(tmp_path / "m.npz"), "--features", "mfcc")
    assert done.returncode == 2 and "unknown sync features" in done.stderr


def test_sync_eval_leave_one_group_out(fixture_run, tmp_path, curate) -> None:
    out = tmp_path / "eval.json"
    done = curate("sync", "eval", str(fixture_run.root), "--json", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "swap ROC-AUC" in done.stdout and "leave-one-group-out" in done.stdout
    figures = json.loads(out.read_text())
    assert len(figures["clips"]) == 7
    assert len({c["group"] for c in figures["clips"]}) == 6  # vr_face_3 and its near-duplicate
    recovered, tried = figures["shifts_recovered"]
    assert tried == 7 * 10 and recovered / tried >= 0.9
    assert figures["swap_auc"] > 0.7  # five other groups are too few to learn or calibrate from
    assert all(len(c["swapped"]) >= 5 for c in figures["clips"])


def test_sync_eval_cross_corpus_on_unseen_speakers(fixture_run, pool_train_subset, tmp_path, curate) -> None:
    """Train on a few pool speakers, score the fixtures' speakers: the figures this small a
    training set holds (the pool-wide figures are in docs/sync.md)."""
    out = tmp_path / "eval.json"
    done = curate(
        "sync", "eval", str(fixture_run.root), "--train-root", str(pool_train_subset),
        "--json", str(out), "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cross-corpus" in done.stdout
    figures = json.loads(out.read_text())
    assert len(figures["clips"]) == 7 and figures["params"]["train_root"] == str(pool_train_subset)
    recovered, tried = figures["shifts_recovered"]
    assert recovered / tried >= 0.9
    assert figures["swap_auc"] >= 0.9
    flagged, shifted = figures["swapped_flagged"]
    assert flagged / shifted >= 0.9
    # Verdicts by seconds of speech, over the clips and their windows: foreign audio is not
    # accepted, and no in-sync span is rejected for lack of evidence.
    bands = figures["by_band"]
    assert set(bands) <= {"under 3 s", "3-6 s", "over 6 s"} and "under 3 s" in bands
    for band, audios in bands.items():
        foreign = audios["foreign"]
        assert foreign.get("accept", 0) <= 0.1 * sum(foreign.values()), band
        assert audios["in_sync"].get("reject", 0) == 0, band
    assert figures["evidence"]["spans"] >= 20 and 0.5 < figures["evidence"]["slope"] < 4
    assert "verdicts by seconds of speech" in done.stdout


def test_speech_frames_are_the_loud_ones() -> None:
    t = np.arange(16000 * 2) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    audio[16000:] *= 1e-3  # the second second 60 dB down: silence for the evidence
    active = speech_frames(audio, 30.0, 60)
    assert active[:28].all() and not active[32:].any()


def test_the_evidence_model_is_z_against_the_root_of_speech_seconds() -> None:
    rng = np.random.default_rng(0)
    seconds = rng.uniform(1, 12, 400)
    judged = [Judged("in_sync", s, 1.7 * np.sqrt(s) + rng.normal(0, 0.8), 0, "accept") for s in seconds]
    judged += [Judged("foreign", s, rng.normal(0, 1), None, "review") for s in seconds[:50]]
    fitted = fit_evidence(judged)
    assert fitted["spans"] == 400 and abs(fitted["slope"] - 1.7) < 0.1 and abs(fitted["spread"] - 0.8) < 0.1
    counts = by_band(judged)
    assert list(counts) == ["under 3 s", "3-6 s", "over 6 s"]
    assert sum(counts["under 3 s"]["in_sync"].values()) == int(np.sum(seconds < 3))


def test_a_clip_is_judged_whole_and_in_windows() -> None:
    assert spans(300, 30.0) == [(0, 300), (0, 75), (75, 150), (0, 120), (120, 240)]
    assert spans(60, 30.0) == [(0, 60)], "a 2 s clip holds no window"


def test_auc() -> None:
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1], [1]) == 0.5
    assert auc([1, 3], [2]) == 0.5


def test_eval_needs_groups(tmp_path, curate) -> None:
    DatasetRoot(tmp_path).commit({})  # an empty root: no clip, no group
    done = curate("sync", "eval", str(tmp_path), "--no-progress")
    assert done.returncode == 1 and "group" in done.stderr


def test_read_audio_pads_a_track_that_starts_late(tmp_path, video) -> None:
    late = delayed_audio_copy(video("vr_face_3.mp4"), tmp_path / "late.mp4", 0.5)
    audio = read_audio(late, 0.0, 1.0)
    assert len(audio) == 16_000
    assert np.abs(audio[:7_000]).max() < 0.01 < np.abs(audio[8_500:]).max()
