"""Identities over a root: the fixture run files every clip with a face descriptor under a person,
the same person in a later run joins their identity, and exports keep a person in one split."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from curate.query import query
from curate.run import run
from export.shards import ExportOptions, export
from extractors.base import ClipRef
from extractors.face.extractor import FaceExtractor
from extractors.identity.assign import assign_root
from extractors.identity.extractor import IdentityExtractor
from extractors.registry import make_config
from filters.rules import check
from settings.config import RunConfig

#: Fixture videos of different people (fixtures README), and the pair of one person.
DIFFERENT = ("vr_face_3.mp4", "vr_face_5.mp4", "r3p_May_5s.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4")
SAME = ("vr_face_3.mp4", "sadtalker_WDA_AOC_000.mp4")  # the same speaker, other crop and length


def identity_by_file(root: Path) -> dict[str, set[str | None]]:
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') f, c.identity_id from clips c join videos v using (video_id)"
        " join tracks t using (clip_id) where t.identity_embedding is not null",
    ).to_pylist()
    found: dict[str, set[str | None]] = {}
    for r in rows:
        found.setdefault(r["f"], set()).add(r["identity_id"])
    return found


def test_every_face_is_filed_and_people_are_told_apart(fixture_run) -> None:
    found = identity_by_file(fixture_run.root)
    assert set(DIFFERENT) | set(SAME) <= set(found)
    assert all(None not in ids for ids in found.values())
    assert found[SAME[0]] == found[SAME[1]]
    people = [next(iter(found[f])) for f in DIFFERENT]
    assert len(set(people)) == len(DIFFERENT), people
    members = query(fixture_run.root, "select identity_id, clips from identities").to_pylist()
    (described,) = query(
        fixture_run.root, "select count(*) n from tracks where identity_embedding is not null"
    ).to_pylist()
    assert sum(r["clips"] for r in members) == described["n"]
    again = assign_root(fixture_run.root, fixture_run.config)
    assert again.assign_set is None and identity_by_file(fixture_run.root) == found


def test_the_same_person_in_a_later_run_joins_their_identity(tmp_path, video) -> None:
    root = tmp_path / "root"
    config = make_config(run=RunConfig(executor="sequential", extractors=["face", "identity"]))
    first = run([str(video(SAME[0]))], root, config, progress=False)
    assert first.identities is not None and first.identities.founded == 1
    second = run([str(video(SAME[1]))], root, config, progress=False)
    assert second.identities is not None and (second.identities.joined, second.identities.founded) == (1, 0)
    found = identity_by_file(root)
    assert found[SAME[0]] == found[SAME[1]]
    (row,) = query(root, "select clips, voice_clips from identities").to_pylist()
    assert (row["clips"], row["voice_clips"]) == (2, 2)
    # the same recording's voice: each clip's voice matches the other's
    matches = query(root, "select voice_match, other_voices from voice_matches").to_pylist()
    assert len(matches) == 2 and all(m["voice_match"] > 0.9 and m["other_voices"] == 1 for m in matches)


def test_a_voice_that_is_not_the_persons_is_flagged(fixture_run) -> None:
    """geneface_zozo_radnerf shows the May speaker's face (filed with r3p_May_5s) speaking with
    another voice; vr_face_3 and sadtalker_WDA_AOC_000 are AOC's face and voice. People with one
    clip are not checked."""
    rows = fixture_run.sql(
        "select regexp_extract(v.uri, '[^/]+$') f, m.voice_match, m.other_voices from voice_matches m"
        " join clips c using (clip_id) join videos v using (video_id)"
    )
    match = {r["f"]: r["voice_match"] for r in rows}
    assert match[SAME[0]] > 0.9 and match[SAME[1]] > 0.9
    assert match["geneface_zozo_radnerf.mp4"] < 0.6 and match["r3p_May_5s.mp4"] < 0.6
    assert not set(match) & {"vr_face_5.mp4", "vr_face_1.mp4", "lp_driving_d20.mp4"}
    (voiced,) = fixture_run.sql("select count(*) n from tracks where identity_voice is not null")
    (seconds,) = fixture_run.sql("select min(identity_voice_s) lo, max(identity_voice_s) hi from clips")
    assert voiced["n"] >= 7 and seconds["lo"] >= 2.0 and seconds["hi"] <= 30.0


def test_split_by_identity_keeps_a_person_in_one_split_and_the_cap_holds(accepted_run) -> None:
    options = ExportOptions(
        name=f"people-{uuid.uuid4().hex[:8]}", split_by="identity", val_fraction=0.3, test_fraction=0.3
    )
    done = export(accepted_run.root, options)
    manifest = json.loads((done.path / "manifest.json").read_text())
    person = {
        r["clip_id"]: r["identity_id"]
        for r in query(accepted_run.root, "select clip_id, identity_id from clips").to_pylist()
    }
    split_of_person: dict[str, set[str]] = {}
    for split, info in manifest["splits"].items():
        for file in info["files"]:
            for clip_id in _clip_ids(done.path / file["file"]):
                split_of_person.setdefault(person[clip_id], set()).add(split)
    assert split_of_person and all(len(s) == 1 for s in split_of_person.values())
    capped = export(
        accepted_run.root, ExportOptions(name=f"cap-{uuid.uuid4().hex[:8]}", max_per_identity_s=5.5)
    )
    manifest = json.loads((capped.path / "manifest.json").read_text())
    # the accepted fixture clips are 4.9-11 s: each person keeps at most 5.5 s, the rest is listed
    assert manifest["capped"] and all(why.startswith("person_cap") for why in manifest["capped"].values())
    duration = {
        r["clip_id"]: r["duration_s"]
        for r in query(accepted_run.root, "select clip_id, duration_s from clips").to_pylist()
    }
    seconds: dict[str, float] = {}
    for info in manifest["splits"].values():
        for file in info["files"]:
            for clip_id in _clip_ids(capped.path / file["file"]):
                seconds[person[clip_id]] = seconds.get(person[clip_id], 0.0) + duration[clip_id]
    assert seconds and max(seconds.values()) <= 5.5


def a_then_b(folder: Path, video) -> Path:  # type: ignore[no-untyped-def]
    """vr_face_3 for 3 s, then vr_face_5 for 3 s, both at 512x512 in the same place, as one video."""
    cut = folder / "a_then_b.mp4"
    done = subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-t", "3", "-i", str(video(SAME[0])), "-t", "3", "-i", str(video(DIFFERENT[1])),
         "-filter_complex", "[0:v]scale=512:512,setsar=1,fps=25[a];[1:v]scale=512:512,setsar=1,fps=25[b];"
         "[0:a]aresample=44100[x];[1:a]aresample=44100[y];[a][x][b][y]concat=n=2:v=1:a=1[v][s]",
         "-map", "[v]", "-map", "[s]", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
         str(cut)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return cut


def test_a_cut_from_one_speaker_to_another_is_seen(tmp_path, video) -> None:
    """One face track throughout (nothing but the person changes), two people along it."""
    cut = a_then_b(tmp_path, video)
    config = make_config()
    face, identity = FaceExtractor(config), IdentityExtractor(config)
    face.crops_wanted = identity.face_crops()
    face.setup()
    identity.setup()
    try:
        for path, people in ((cut, 2), (video(SAME[0]), 1)):
            clip = ClipRef(path, "v", path.stem, 0.0, 5.0 if people == 1 else 6.0, config.face.fps, True)
            faces = face.extract(clip, {})
            out = identity.extract(clip, {**faces.clip, **faces.track})
            assert out.clip["identity_people"] == people, (path, out.clip)
            verdict = check(config.filter.rules["speaker_change"], out.clip["identity_people"])
            assert verdict == ("review" if people == 2 else "pass")
            if people == 2:  # the change lies between the last face of one and the first of the other
                assert 1.5 < out.clip["identity_before_s"] < 3.0 <= out.clip["identity_change_s"] < 4.5
                assert out.clip["identity_parts"] == 2  # both sides at least [segment] min_clip_s (2 s)
            else:
                assert out.clip["identity_parts"] is None
        assert faces.clip["face_tracks"] == 1
    finally:
        face.close()
        identity.close()


def _clip_ids(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["clip_id"]).column("clip_id").to_pylist()


def test_a_clip_whose_speaker_changes_is_cut_into_one_clip_per_person(tmp_path, video, monkeypatch) -> None:
    """The A-then-B video with no shot detection (a cut it missed): the run extracts each person's
    part as a clip of its own, the whole clip is rejected (speaker_cut), and the first part joins
    vr_face_3's identity (vr_face_3 itself is a twin of the first part: the same recording). The cut round is resumable: stopped before it, the next run does it."""
    import curate.run

    config = make_config(
        run=RunConfig(executor="sequential", extractors=["face", "fingerprint", "identity"]),
        segment={"detect_shots": False},
    )
    inputs = [str(a_then_b(tmp_path, video)), str(video(SAME[0]))]
    root = tmp_path / "root"

    def stop(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(curate.run, "cut_speakers", stop)
    with pytest.raises(KeyboardInterrupt):
        run(inputs, root, config, progress=False)
    monkeypatch.undo()
    again = run(inputs, root, config, progress=False)
    assert (again.videos_skipped_done, again.speaker_parts, again.clips) == (2, 2, 2)
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') f, c.start_s, c.end_s, c.cut_start, c.cut_end, c.identity_people,"
        " c.identity_parts, c.identity_id, c.clip_id, d.verdict, d.reasons, d.duplicate_of"
        " from clips c join videos v using (video_id)"
        " join current_decisions d using (clip_id) order by f, c.start_s, c.end_s",
    ).to_pylist()
    first, whole, second = (r for r in rows if r["f"] == "a_then_b.mp4")  # by start, then end
    (alone,) = (r for r in rows if r["f"] == SAME[0])
    assert (whole["start_s"], whole["identity_people"], whole["identity_parts"]) == (0.0, 2, 2)
    assert whole["verdict"] == "reject" and "speaker_cut" in whole["reasons"]
    assert (first["start_s"], first["cut_end"], second["cut_start"], second["end_s"]) == (
        0.0, "speaker", "speaker", whole["end_s"],
    )  # fmt: skip
    assert first["end_s"] <= 3.2 and second["start_s"] >= 2.8  # nothing of the other person
    assert first["identity_people"] == second["identity_people"] == 1
    assert first["identity_id"] == alone["identity_id"] != second["identity_id"]
    assert not {"speaker_cut", "speaker_change"} & set(first["reasons"] + second["reasons"])
    # the parts are not twins of the clip they were cut from (one footage) nor of each other; the
    # first part and vr_face_3 are: one of them stands for both
    assert "duplicate" not in second["reasons"]
    assert whole["duplicate_of"] not in (first["clip_id"], second["clip_id"])
    assert {first["duplicate_of"], alone["duplicate_of"]} in (
        {None, alone["clip_id"]},
        {None, first["clip_id"]},
    )
    third = run(inputs, root, config, progress=False)
    assert third.executor == "none (nothing new)" and third.speaker_parts == 0
