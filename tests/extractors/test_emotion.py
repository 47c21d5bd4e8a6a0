"""Emotion labels: names of the labelled corpora, the FACS prior, the shipped fusion on labelled
clips of speakers it never saw (the pool's test split), and on the calm speakers of the fixtures."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from extractors.emotion.fusion import EMOTION_CLASSES, NEUTRAL, facs_templates, valence_arousal
from extractors.emotion.names import label_from_name
from extractors.emotion.speaker import label_root
from extractors.emotion.training import evaluate_root
from extractors.registry import make_config
from manifests.schema import BLENDSHAPE_NAMES


@pytest.mark.parametrize(
    ("name", "label", "speaker"),
    [
        ("dreamtalk_W011_front_disgusted_level3_001.mp4", "disgust", "mead_W011"),
        ("spectre_mead_M024_level_2_surprised_010.mp4", "surprise", "mead_M024"),
        ("eamm_M030_sad_3_001.mp4", "sad", "mead_M030"),
        ("01-01-06-01-02-01-12.mp4", "fear", "ravdess_12"),  # RAVDESS: emotion is the third field
        ("02-01-02-02-01-02-03.mp4", "neutral", "ravdess_03"),  # calm counts as neutral
        ("1001_DFA_ANG_XX.flv", "angry", "crema_1001"),
        ("1091_IEO_HAP_HI.mp4", "happy", "crema_1091"),
        ("dreamtalk_M030_front_contempt_level3_001.mp4", None, "mead_M030"),  # outside the seven
        ("vr_face_3.mp4", None, None),
    ],
)
def test_labels_and_speakers_from_corpus_file_names(
    name: str, label: str | None, speaker: str | None
) -> None:
    assert label_from_name(name) == (label, speaker)


def test_facs_prototypes_on_arkit_channels() -> None:
    templates = facs_templates()
    assert templates.shape == (7, len(BLENDSHAPE_NAMES))
    assert not templates[NEUTRAL].any(), "neutral is the absence of a departure"

    def top(name: str) -> set[str]:
        row = templates[EMOTION_CLASSES.index(name)]
        return {BLENDSHAPE_NAMES[i] for i in np.flatnonzero(row)}

    assert top("happy") == {"cheekSquintLeft", "cheekSquintRight", "mouthSmileLeft", "mouthSmileRight"}
    assert {"browInnerUp", "jawOpen", "eyeWideLeft"} <= top("surprise")
    assert {"noseSneerLeft", "mouthFrownRight"} <= top("disgust")
    happy = valence_arousal(np.eye(7)[EMOTION_CLASSES.index("happy")])
    sad = valence_arousal(np.eye(7)[EMOTION_CLASSES.index("sad")])
    assert happy[0] > 0 > sad[0] and happy[1] > sad[1]


@pytest.mark.parametrize("model", ["expression-facex", "expression-fer"])
def test_each_face_model_has_its_shipped_fusion(model: str, tmp_path) -> None:
    """A config naming either face model (older example configs name expression-fer) runs with
    the fusion fitted on that model's distributions; a fusion of the other model is refused."""
    from extractors.emotion.extractor import EmotionExtractor

    extractor = EmotionExtractor(make_config(emotion={"model": model}))
    assert extractor.load_fusion().face_model == model
    assert extractor.fusion_name in extractor.models()
    other = "expression-fer" if model == "expression-facex" else "expression-facex"
    mismatched = EmotionExtractor(make_config(emotion={"model": other, "fusion": extractor.fusion_name}))
    with pytest.raises(ValueError, match="fitted on face model"):
        mismatched.load_fusion()


@pytest.mark.slow  # MediaPipe and the face model over 10 real clips of the pool's test speakers
def test_the_shipped_fusion_on_speakers_it_never_saw(pool_emotion_test_root, curate) -> None:
    """What the held-out clips hold today (docs/scores.md): the face side gets 5 of 10 right where
    the face model alone gets 4, the neutral clip ranked below 8 of the 9 emotional ones, disgust
    read as angry. Three clips have audio; the voice hears M003's level-1 happy as neutral, which
    leaves that clip uncertain: 4 of 10 fused."""
    figures = evaluate_root(pool_emotion_test_root, make_config())
    assert figures.clips == 10 and figures.speakers == 3
    side, face, fused = figures.cues["face side"], figures.cues["face model"], figures.cues["fused"]
    assert side.accuracy >= 0.5, figures.to_text()
    assert side.accuracy > face.accuracy, "the blendshapes add what the face model misses"
    assert side.neutral_auc is not None and side.neutral_auc >= 0.8, figures.to_text()
    assert fused.accuracy >= 0.4 and "voice" in figures.cues, figures.to_text()
    level1 = next(c for c in figures.per_clip if c["clip"] == "spectre_mead_M003_level_1_happy_024.mp4")
    assert level1["fused"] == "neutral" and level1["confidence"] < 0.6, level1
    by_clip = {c["clip"]: c["fused"] for c in figures.per_clip}
    for emotion in ("angry", "fear", "surprised"):
        assert by_clip[f"dreamtalk_W011_front_{emotion}_level3_001.mp4"] == emotion.removesuffix("d"), by_clip
    assert by_clip["spectre_mead_W036_level_3_happy_007.mp4"] == "happy"
    done = curate("emotion", "eval", str(pool_emotion_test_root))
    assert done.returncode == 0, done.stderr
    assert "10 labelled clip(s) of 3 speaker(s)" in done.stdout and "confusion" in done.stdout


@pytest.mark.slow  # MediaPipe and the face model over 10 real clips of the pool's test speakers
def test_speaker_relative_labels_on_speakers_it_never_saw(pool_emotion_test_root, curate) -> None:
    """docs/scores.md: judged against their own speaker's clips, 6 of the 10 held-out clips are
    right where the clips' own labels get 4. The run labelled W011's 7 and M003's 2 clips so
    (W036 has one clip and keeps its own label), and the export carries those labels, also for
    clips of videos without sound."""
    from curate.query import query

    figures = evaluate_root(pool_emotion_test_root, make_config())
    relative, own = figures.cues["speaker-relative"], figures.cues["fused"]
    assert relative.accuracy >= 0.6 and relative.accuracy > own.accuracy, figures.to_text()
    # 0.89 from the face side alone; the voice hears M003's level-1 happy as neutral: 0.78.
    assert relative.neutral_auc is not None and relative.neutral_auc >= 0.75, figures.to_text()
    assert figures.speaker_coverage is not None and figures.speaker_coverage >= 0.6
    printed = figures.to_text().split("columns: speaker-relative label)\n")[1].splitlines()[1:8]
    diagonal = sum(int(line.split()[1 + i]) for i, line in enumerate(printed))
    assert diagonal == round(relative.accuracy * figures.clips), "the exported labels' confusion is printed"

    labelled = "select e.clip_id, e.speaker, e.speaker_clips, e.emotion_dominant from speaker_emotion e"
    rows = query(pool_emotion_test_root, labelled).to_pylist()
    assert sorted({(r["speaker"], r["speaker_clips"]) for r in rows}) == [("mead_M003", 2), ("mead_W011", 7)]
    assert len(rows) == 9
    unchanged = label_root(pool_emotion_test_root, make_config(), changed_only=True)
    assert unchanged.label_set is None and unchanged.grouped == 0, (
        "a run relabels only speakers with new clips"
    )
    again = curate("emotion", "speakers", str(pool_emotion_test_root))
    assert again.returncode == 0, again.stderr
    assert "9 of 10 clip(s), 2 speaker(s) with several clips" in again.stdout
    assert query(pool_emotion_test_root, "select count(*) n from speaker_emotion").to_pylist()[0]["n"] == 9

    sources = query(
        pool_emotion_test_root, "select emotion_source s, count(*) n from clip_emotion group by s"
    )
    assert {r["s"]: r["n"] for r in sources.to_pylist()} == {"speaker": 9, "clip": 1}
    done = curate("export", str(pool_emotion_test_root), "--name", "emo", "--val", "0", "--test", "0")
    assert done.returncode == 0, done.stderr
    shards = [
        row for f in sorted((pool_emotion_test_root / "exports" / "emo").glob("*.parquet"))
        for row in pq.read_table(f).to_pylist()
    ]  # fmt: skip
    exported = {r["clip_id"]: r for r in shards}
    assert len(exported) == 10
    for r in rows:
        assert exported[r["clip_id"]]["emotion"] == r["emotion_dominant"]
    angry = curate(
        "export", str(pool_emotion_test_root), "--name", "angry", "--where", "m.emotion = 'angry'", "--val", "0", "--test", "0"
    )  # fmt: skip
    assert angry.returncode == 0, angry.stderr
    wanted = sum(1 for r in exported.values() if r["emotion"] == "angry")
    assert wanted and f"{wanted} clips" in angry.stdout, angry.stdout
    silent = [r for r in shards if not any(r["audio_pcm16"])]
    assert silent, "the face-only MEAD clips have no sound: their audio is zeros"


@pytest.mark.slow  # reads the fixture run
def test_calm_speakers_are_not_labelled_fear_or_surprise(fixture_run) -> None:
    from curate.query import query

    rows = query(
        fixture_run.root,
        "select regexp_extract(v.uri, '[^/]+$') name, c.emotion_dominant, c.emotion_confidence, c.emotion_probs "
        "from clips c join videos v using (video_id) where c.emotion_probs is not null",
    ).to_pylist()
    calm = {"vr_face_1.mp4", "vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "lp_driving_d20.mp4"}
    assert calm <= {r["name"] for r in rows}
    for r in rows:
        assert sum(r["emotion_probs"]) == pytest.approx(1.0, abs=1e-4)
        named = r["emotion_dominant"]
        assert (named is None) == (r["emotion_confidence"] < make_config().emotion.min_confidence), r
        if r["name"] in calm:
            assert named not in ("fear", "surprise"), r
