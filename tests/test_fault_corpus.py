"""A corpus of bad and unusual inputs, made at test time from the fixtures (remuxes, one small
encode, byte edits, links), run in one `curate run` with good clips mixed in, as a user would:
exit 0, every input accounted for by name, the good clips accepted, no traceback, and each
failure a single line naming its file."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest

from bench.media import (
    damaged_copy,
    delayed_audio_copy,
    second_audio_copy,
    sideways_copy,
    stream_copy,
    synthetic_video,
)
from curate.query import query

GOOD = ("vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4")


def build_corpus(folder, video):  # type: ignore[no-untyped-def]
    """Kind -> file name of each input; good fixtures are plain copies."""
    rng = np.random.default_rng(0)
    src = video("vr_face_1.mp4")
    data = src.read_bytes()
    kinds: dict[str, str] = {}

    def add(kind: str, name: str) -> None:
        kinds[kind] = name

    for name in GOOD:
        shutil.copy(video(name), folder / name)
        add(f"good {name}", name)
    front = video("lp_driving_d20.mp4").read_bytes()  # its index is at the front
    (folder / "truncated_60.mp4").write_bytes(front[: len(front) * 6 // 10])
    add("truncated at 60%, index at the front", "truncated_60.mp4")
    (folder / "truncated_5.mp4").write_bytes(data[: len(data) // 20])
    add("truncated at 5%, index at the end", "truncated_5.mp4")
    (folder / "zero_byte.mp4").write_bytes(b"")
    add("zero bytes", "zero_byte.mp4")
    (folder / "text.mp4").write_text("this is not a video\n")
    add("text named .mp4", "text.mp4")
    (folder / "noise.mp4").write_bytes(rng.integers(0, 256, 200_000, np.uint8).tobytes())
    add("random bytes", "noise.mp4")
    head = bytearray(data)
    head[:4096] = rng.integers(0, 256, 4096, np.uint8).tobytes()
    (folder / "header_overwritten.mp4").write_bytes(bytes(head))
    add("header overwritten", "header_overwritten.mp4")
    tail = bytearray(data)
    tail[-4096:] = rng.integers(0, 256, 4096, np.uint8).tobytes()
    (folder / "tail_overwritten.mp4").write_bytes(bytes(tail))
    add("index (tail) overwritten", "tail_overwritten.mp4")
    (folder / "dangling.mp4").symlink_to(folder / "nowhere.mp4")
    add("dangling link", "dangling.mp4")
    (folder / "loop_a.mp4").symlink_to(folder / "loop_b.mp4")
    (folder / "loop_b.mp4").symlink_to(folder / "loop_a.mp4")
    add("looping link", "loop_a.mp4")
    shutil.copy(video("vr_face_3.mp4"), folder / "zz_same_bytes.mp4")
    add("same bytes as another input", "zz_same_bytes.mp4")
    with av.open(str(src)) as container:
        next(container.decode(video=0)).to_image().save(folder / "still.mp4", format="JPEG")
    add("JPEG named .mp4", "still.mp4")
    damaged_copy(src, folder / "audio_damaged.mp4", "audio", 2.0, 3.0)
    add("damaged audio packets", "audio_damaged.mp4")
    damaged_copy(src, folder / "video_damaged.mp4", "video", 2.0, 3.0)
    add("damaged video packets", "video_damaged.mp4")
    # The usable variants are all made from vr_face_1, which is not among the good clips: they
    # are near-duplicates of each other, and the filters keep one of them.
    sideways_copy(src, folder / "phone_sideways.mp4")
    add("display matrix rotation", "phone_sideways.mp4")
    second_audio_copy(src, video("lp_driving_d18.mp4"), folder / "two_audio.mp4")
    add("default audio stream second", "two_audio.mp4")
    delayed_audio_copy(src, folder / "late_audio.mp4", 0.4)
    add("audio 12 frames late", "late_audio.mp4")
    stream_copy(video("vr_face_3.mp4"), folder / "audio_only.mp4", ("audio",))
    add("no video stream", "audio_only.mp4")
    stream_copy(video("vr_face_3.mp4"), folder / "video_only.mp4", ("video",))
    add("no audio stream", "video_only.mp4")
    stream_copy(video("vr_face_3.mp4"), folder / "short.mp4", end_s=0.4)
    add("0.4 s long", "short.mp4")
    stream_copy(src, folder / "remuxed.mkv")
    add("Matroska container", "remuxed.mkv")
    synthetic_video(folder / "tiny.mp4", 16, 16, 2.0)
    add("16x16 pixels", "tiny.mp4")
    synthetic_video(folder / "strip.mp4", 1024, 16, 2.0)
    add("1024x16 pixels", "strip.mp4")
    shutil.copy(video("lp_driving_d18.mp4"), folder / "digital_silence.mp4")
    add("digital silence", "digital_silence.mp4")
    shutil.copy(video("moviepy_big_buck_bunny_0_30.webm"), folder / "cartoon.webm")
    add("WebM without a duration, no face", "cartoon.webm")
    return kinds


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, video, curate):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("corpus")
    kinds = build_corpus(folder, video)
    files = len(list(folder.iterdir()))
    root = tmp_path_factory.mktemp("corpus_root") / "root"
    missing = folder / "named_but_missing.mp4"
    done = curate("run", str(folder), str(missing), "--out", str(root), "--no-progress")
    kinds["missing path"] = missing.name
    return kinds, root, done, files + 1


def test_the_corpus_has_25_kinds(corpus_run) -> None:
    kinds, *_ = corpus_run
    assert len([k for k in kinds if not k.startswith("good")]) >= 25


def test_one_run_over_the_corpus_exits_0_without_a_traceback(corpus_run) -> None:
    _, root, done, inputs = corpus_run
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    summary = json.loads(sorted((root / "runs").glob("*.json"))[-1].read_text())
    assert summary["inputs"] == inputs


def test_every_input_is_accounted_for_by_name(corpus_run) -> None:
    kinds, root, _, inputs = corpus_run
    names = {
        r["name"]: r
        for r in query(root, "select regexp_extract(uri, '[^/]+$') name, * from inputs").to_pylist()
    }
    expected = set(kinds.values()) | {"loop_b.mp4"}
    assert expected <= set(names) and len(names) == inputs, expected - set(names)
    assert names["zz_same_bytes.mp4"]["outcome"] == "duplicate"
    assert names["zz_same_bytes.mp4"]["duplicate_of_uri"].endswith("/vr_face_3.mp4")


def test_the_good_clips_are_accepted_and_the_usable_variants_kept(corpus_run) -> None:
    root = corpus_run[1]
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') name, d.verdict, d.reasons, c.errors, c.face_detect_rate,"
        " c.speech_text, c.sync_peak_frames from current_decisions d join clips c using (clip_id)"
        " join videos v using (video_id)",
    ).to_pylist()
    found = {r["name"]: r for r in rows}
    for name in GOOD:
        assert (found[name]["verdict"], found[name]["reasons"]) == ("accept", []), (name, found[name])
    usable = ("audio_damaged.mp4", "video_damaged.mp4", "phone_sideways.mp4", "two_audio.mp4", "remuxed.mkv")
    for name in usable:  # read despite their faults: a face on every frame, the words spoken
        r = found[name]
        assert not r["errors"] and r["face_detect_rate"] >= 0.95 and "asking for help" in r["speech_text"], r
    assert found["late_audio.mp4"]["sync_peak_frames"] >= 9  # 12 frames late; the source itself reads -3


def test_each_failure_is_one_line_naming_its_file(corpus_run) -> None:
    root = corpus_run[1]
    failures = query(root, "select uri, stage, reason, message from failures").to_pylist()
    assert failures
    for f in failures:
        assert "\n" not in f["message"], f
        assert f["uri"].rsplit("/", 1)[-1] in f["message"], f
    by_name = {}
    for f in failures:
        by_name.setdefault(f["uri"].rsplit("/", 1)[-1], set()).add(f["reason"])
    expected = {
        "truncated_60.mp4": "truncated",
        "zero_byte.mp4": "empty_file",
        "text.mp4": "unreadable",
        "noise.mp4": "unreadable",
        "dangling.mp4": "missing_file",
        "loop_a.mp4": "missing_file",
        "still.mp4": "unreadable",
        "audio_only.mp4": "no_video_stream",
        "video_only.mp4": "no_audio",
        "short.mp4": "too_short",
        "digital_silence.mp4": "no_speech",
        "cartoon.webm": "no_face",
        "named_but_missing.mp4": "missing_file",
    }
    for name, reason in expected.items():
        assert reason in by_name.get(name, set()), (name, by_name.get(name))
