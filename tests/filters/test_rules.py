"""Thresholds to verdicts: the pure rules, and `curate filter` over the fixture run (no model runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.filter import NoClips, UnknownColumn, apply_filters, check_rules
from extractors.registry import load_config, make_config
from extractors.sync.extractor import SyncConfig, in_sync_p
from filters.rules import Verdict, check, judge
from manifests.store import DatasetRoot
from settings.config import ConfigError, FilterConfig, Rule

RATE = Rule(column="face_detect_rate", min=0.9, band=0.05)


@pytest.mark.parametrize(
    ("value", "outcome"),
    [(0.99, "pass"), (0.96, "pass"), (0.94, "review"), (0.86, "review"), (0.84, "fail"), (None, "fail")],
)
def test_a_min_rule_has_a_review_band(value, outcome) -> None:
    assert check(RATE, value) == outcome


def test_a_max_rule_mirrors_it() -> None:
    jitter = Rule(column="x", max=0.1, band=0.02)
    assert [check(jitter, v) for v in (0.05, 0.09, 0.11, 0.13)] == ["pass", "review", "review", "fail"]


def test_recorded_failures_reject_with_their_codes_and_skip_the_rules() -> None:
    row = {"errors": [("face", "no_face: no face in 100% of frames"), ("speech", "no_audio: none")]}
    assert judge(row, make_config().filter) == Verdict("reject", ["no_audio", "no_face"])


def test_every_failed_and_borderline_rule_is_named() -> None:
    row = {
        "errors": {}, "face_detect_rate": 0.5, "face_unresolved_rate": 0.08, "speech_ratio": 0.9,
        "speech_language_prob": 0.99, "duration_s": 5.0, "speech_language": "de", "sync_confidence": 3.5,
        "sync_in_sync_p": 0.5, "sync_offset_frames": 1, "quality_face_px": 200.0, "quality_brightness": 120.0, "quality_snr_db": 30.0,
        "quality_clipping": 0.0,
    }  # fmt: skip
    assert judge(row, make_config().filter) == Verdict("reject", ["face_missing", "multiple_faces"])
    row["face_detect_rate"] = 1.0
    assert judge(row, make_config().filter) == Verdict("review", ["multiple_faces"])
    assert judge(row, make_config(filter={"languages": ["en"]}).filter) == Verdict(
        "reject", ["language", "multiple_faces"]
    )
    row["face_unresolved_rate"] = 0.0
    assert judge(row, make_config().filter) == Verdict("accept", [])
    assert judge({**row, "duplicate_of": "x"}, make_config().filter) == Verdict("reject", ["duplicate"])
    assert judge(
        {**row, "duplicate_of": "x"}, make_config(filter={"duplicates": "review"}).filter
    ) == Verdict("review", ["duplicate"])
    assert judge({**row, "sync_offset_frames": -7}, make_config().filter) == Verdict(
        "review", ["sync_offset"]
    )
    assert judge({**row, "sync_offset_frames": -14}, make_config().filter) == Verdict(
        "reject", ["sync_offset"]
    )


def test_sync_rules_reject_only_when_in_sync_is_implausible_for_the_speech_held() -> None:
    """Calibrated sync (z-scores): a low z on little speech is absence of evidence (review); the
    same z on much speech is evidence of foreign audio (reject); unknown offsets never reject."""
    config = make_config()
    rules, sync = config.filter.rules, config.section("sync", SyncConfig)
    out_of_sync, undecided, offset = rules["out_of_sync"], rules["sync_undecided"], rules["sync_offset"]

    def verdict(z: float, speech_s: float) -> tuple[str, str]:
        p = in_sync_p(z, speech_s, sync.in_sync_z_slope, sync.in_sync_z_spread)
        return check(out_of_sync, p), check(undecided, z)

    assert verdict(0.3, 2.0) == ("pass", "review"), "2 s of speech at z 0.3: too little to judge"
    assert verdict(0.3, 20.0) == ("fail", "review"), "20 s of speech at z 0.3: foreign audio"
    assert verdict(2.5, 2.0) == ("pass", "pass") and verdict(6.0, 20.0) == ("pass", "pass")
    assert check(out_of_sync, None) == "review" and check(undecided, None) == "pass"
    p = [in_sync_p(z, 4.0, 1.5, 1.0) for z in (0.0, 1.5, 3.0, 4.5)]
    assert p[0] < p[1] < p[2] < p[3] and abs(p[2] - 0.5) < 1e-9, "the in-sync median at 1.5 x sqrt(4 s)"
    assert [check(offset, k) for k in (0, 3, -3, 4, -5, 13, 14, -14, None)] == [
        "pass", "pass", "pass", "review", "review", "review", "fail", "fail", "pass",
    ]  # fmt: skip


def test_a_rule_says_what_a_missing_value_does() -> None:
    assert check(Rule(column="x", min=1.0), None) == "fail"
    assert check(Rule(column="x", min=1.0, missing="review"), None) == "review"
    assert check(Rule(column="x", min=1.0, missing="accept"), None) == "pass"


def test_rules_in_the_file_merge_over_the_defaults(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[filter.rules.face_missing]\nmin = 0.5\n[filter.rules.too_short]\nenabled = false\n")
    rules = load_config(path).filter.rules
    assert rules["face_missing"] == Rule(column="face_detect_rate", min=0.5, band=0.05)
    assert not rules["too_short"].enabled and "multiple_faces" in rules
    path.write_text("[filter.rules.mine]\nband = 0.1\n")
    with pytest.raises(ConfigError, match="column"):
        load_config(path)


def verdicts(fixture_run, decision_set: str) -> dict[str, tuple[str, list[str]]]:
    rows = fixture_run.sql(
        "select regexp_extract(v.uri, '[^/]+$') name, c.clip_index, d.verdict, d.reasons from decisions d"
        " join clips c using (clip_id) join videos v using (video_id)"
        f" where d.decision_set = '{decision_set}'"
    )
    return {f"{r['name']}#{r['clip_index']}": (r["verdict"], r["reasons"]) for r in rows}


def test_fixture_verdicts_and_a_changed_threshold_without_models(fixture_run, tmp_path) -> None:
    first = apply_filters(fixture_run.root, make_config())
    before = verdicts(fixture_run, first.decision_set)
    for name in (
        "vr_face_3.mp4#0",
        "vr_face_5.mp4#0",
        "r3p_May_5s.mp4#0",
        "vr_face_1.mp4#0",
    ):
        assert before[name] == ("accept", []), name
    assert before["lp_driving_d20.mp4#0"] == ("review", ["sync_offset"])  # audio measured 8 frames late
    assert before["iplap_129.mp4#0"] == ("reject", ["no_audio"])
    assert before["lp_driving_d18.mp4#0"] == ("reject", ["no_speech"])
    assert before["lp_driving_d14.mp4#0"] == ("reject", ["no_speech"])
    assert {before[f"moviepy_big_buck_bunny_0_30.webm#{i}"][1][0] for i in range(3)} == {"no_face"}

    english_only = make_config(filter=FilterConfig(languages=["en"]))
    second = apply_filters(fixture_run.root, english_only)
    after = verdicts(fixture_run, second.decision_set)
    changed = {k for k in before if after[k] != before[k]}
    assert changed == {"lp_driving_d20.mp4#0", "geneface_zozo_radnerf.mp4#0"}  # the two non-English voices
    assert after["geneface_zozo_radnerf.mp4#0"] == ("reject", ["language"])
    assert after["lp_driving_d20.mp4#0"] == ("reject", ["language", "sync_offset"])
    assert second.config_hash != first.config_hash
    assert verdicts(fixture_run, first.decision_set) == before  # the earlier set stays readable
    current = fixture_run.sql(
        "select d.verdict, d.decision_set from current_decisions d join clips c using (clip_id)"
        " join videos v using (video_id) where v.uri like '%lp_driving_d20.mp4'"
    )
    assert current == [{"verdict": "reject", "decision_set": second.decision_set}]


def test_filter_errors_are_clear(tmp_path, fixture_run) -> None:
    DatasetRoot(tmp_path).commit({})  # a root with a commit record and no table
    with pytest.raises(NoClips, match="curate run"):
        apply_filters(tmp_path, make_config())
    bad = make_config(filter=FilterConfig(rules={"x": Rule(column="nope", min=1)}))
    with pytest.raises(UnknownColumn, match="nope"):
        apply_filters(fixture_run.root, bad)


def test_the_example_config_is_the_defaults() -> None:
    assert load_config(Path(__file__).resolve().parents[2] / "curate.example.toml") == make_config()


def test_inverted_limits_and_rules_on_text_are_refused(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[filter.rules.sync_offset]\nmin = 5\nmax = -5\n")
    with pytest.raises(ConfigError, match=r"min \(5\) is above max"):
        load_config(path)
    path.write_text('[filter.rules.lang]\ncolumn = "speech_language"\nmin = 1\n')
    with pytest.raises(UnknownColumn, match="holds string, not numbers"):
        check_rules(load_config(path))


def test_multiple_faces_counts_only_frames_with_a_face_and_null_face_scores_never_reject() -> None:
    """A clip whose face is missed in some frames but never shown twice is not "multiple faces";
    scores left null for too few face frames send it to review, not to reject."""
    row = {
        "errors": {}, "face_detect_rate": 0.87, "face_unresolved_rate": 0.0, "speech_ratio": 0.9,
        "speech_language_prob": 0.99, "duration_s": 5.0, "sync_confidence": 3.5, "sync_offset_frames": 1,
        "sync_in_sync_p": 0.5, "quality_face_px": 200.0, "quality_brightness": 120.0, "quality_snr_db": 30.0, "quality_clipping": 0.0,
    }  # fmt: skip
    assert judge(row, make_config().filter) == Verdict("review", ["face_missing"])
    assert judge({**row, "face_unresolved_rate": 0.5}, make_config().filter) == Verdict(
        "reject", ["multiple_faces", "face_missing"]
    )
    # two faces, the speaking one told by sync: face_multi_rate is high, nothing unresolved
    assert judge({**row, "face_multi_rate": 1.0}, make_config().filter) == Verdict("review", ["face_missing"])
    weak = {**row, "face_detect_rate": 1.0, "quality_face_px": None, "quality_brightness": None}
    weak |= {"sync_confidence": None, "sync_offset_frames": None, "sync_in_sync_p": None}
    assert judge(weak, make_config().filter) == Verdict(
        "review", ["out_of_sync", "face_too_small", "too_dark"]
    )


def test_a_review_only_rule_never_rejects() -> None:
    rule = Rule(column="synthetic_score", max=0.73, beyond="review", missing="accept")
    assert [check(rule, v) for v in (0.2, 0.73, 0.74, 0.999)] == ["pass", "pass", "review", "review"]
    assert check(rule, None) == "pass"
    assert check(Rule(column="x", min=2.0), 1.0) == "fail", "rules reject beyond a limit by default"
