"""The active speaker on composites: is each clip's subject the face that speaks, and its verdict?

When two faces share the picture, or the speaker changes, does the clip's subject (the face its
track follows) belong to the voice, and what do the filters make of the clip?

    python -m bench.active_speaker --out DIR [--root ROOT] [--make-only] [--eval-only] [--fresh]
                                   [--executor sequential|ray] [--per-kind 6] [--seed 11] [--json F]

1. **Composites** (made once into ``DIR``, reused by a rerun) from the pool's test speakers
   (``docs/pool/test.csv``): recordings of at least 4 s in which the face landmarker sees one face
   (at most one face, at least one in most of 8 sampled frames), one recording per speaker, paired
   with another speaker (seeded, each speaker used about as often). Three kinds, ``--per-kind`` each
   (6), 25 fps constant, yuv420p, AAC, at most 12 s:

   - ``side_by_side``: A and B scaled to 360 px high side by side, as long as the shorter; the
     sound of the left one in even composites, of the right one in odd ones;
   - ``pip``: A 480 px high, B a third of A's width in A's bottom right corner, as long as the
     shorter; the sound of the big one (A) in even composites, of the small one (B) in odd ones;
   - ``a_then_b``: A (up to 6 s) then B (up to 6 s), each with its own sound, both fitted into
     640x360 (black bars): the speaker changes half way.

   ``DIR/truth.csv`` says, per composite and time span (``t0_s``, ``t1_s``: composite seconds),
   where the speaking face is: ``x0, y0, x1, y1``, its picture's region normalised to the
   composite frame, and ``hole_x0 .. hole_y1``, a region inside it that shows another face (the
   inset of a pip whose big face speaks; empty otherwise), with ``speaker_id`` and
   ``other_speaker_id``. ``DIR/composites.csv`` lists the composites, their pair and sources.
2. ``curate run DIR --out ROOT`` with the default config (``ROOT`` defaults to ``DIR`` + ``_root``;
   ``--fresh`` removes it first, so that changed code is measured rather than resumed; the
   sequential executor unless ``--executor ray``), then per clip from the root's views:
   ``clips`` (``start_s``, ``end_s``, ``duration_s``, ``speech_ratio``, ``sync_speech_s``,
   ``face_multi_rate``, ``face_count_max``), ``tracks`` (``t_s``, ``face_box``),
   ``current_decisions`` (``verdict``, ``reasons``) and ``videos.uri`` (matched to the composite by
   file name).

A clip's subject is **right** when the mean centre of its face boxes, over its frames with a face
inside a truth span, lies in the speaker's region and not in its hole; for ``a_then_b``, per frame
against the span holding the frame's time, the clip right when at least 90% of those frames are.
Speech seconds: ``speech_ratio * duration_s`` (voice activity, whatever the face), else
``sync_speech_s``. Printed and written (``--json``) per kind over the clips with at least 2 s of
speech: share with the right subject, share rejected (with the reasons' counts), accepted and in
review; the same for the shorter clips apart; and every clip's row.

Two caveats. The composites reuse each recording's sound in several composites (9 speakers, 24
speaking parts), so the ``duplicate`` filter rejects most clips whatever their subject: the share
rejected for another reason is given beside it. And while one face shows at a time (``a_then_b``)
the region test cannot fail: a clip not cut at the change holds two people's faces as one
subject, counted as ``two_speakers_in_clip`` (and how many of those are accepted or in review).
A clip the run cut where its speaker changes (``identity_parts`` > 0: rejected, ``speaker_cut``)
is left out of the figures, its parts (``cut_start`` or ``cut_end`` = ``speaker``) counted as
clips, and reported under ``cut_at_speaker_change``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TEST_LIST = REPO / "docs" / "pool" / "test.csv"
FFMPEG = "/usr/bin/ffmpeg" if Path("/usr/bin/ffmpeg").exists() else "ffmpeg"
FFPROBE = "/usr/bin/ffprobe" if Path("/usr/bin/ffprobe").exists() else "ffprobe"
KINDS = ("side_by_side", "pip", "a_then_b")
FPS = 25
MIN_SOURCE_S = 4.0
MAX_S = 12.0
MIN_SPEECH_S = 2.0
RIGHT_FRAMES = 0.9  # a_then_b: share of face frames in the speaker's region for a right clip
SEED = 11
TRUTH_COLUMNS = [
    "composite", "kind", "t0_s", "t1_s", "x0", "y0", "x1", "y1",
    "hole_x0", "hole_y0", "hole_x1", "hole_y1", "speaker_id", "other_speaker_id",
]  # fmt: skip
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-r", str(FPS),
          "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-movflags", "+faststart"]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Sources


def probe(path: Path) -> dict[str, Any]:
    """Duration (s: the video stream's, else the container's), display width and height
    (pixels, sample aspect applied) of ``path``."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,sample_aspect_ratio,duration:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    info = json.loads(out)
    stream = info["streams"][0]
    sar = stream.get("sample_aspect_ratio") or "1:1"
    num, den = (int(v) for v in sar.split(":")) if ":" in sar else (1, 1)
    width = stream["width"] * (num / den if num > 0 and den > 0 else 1.0)
    duration = float(stream.get("duration") or info["format"]["duration"])
    return {"duration_s": duration, "width": width, "height": float(stream["height"])}


def sampled_frames(path: Path, duration_s: float, n: int = 8) -> list[np.ndarray]:
    """``n`` RGB frames spread evenly over the recording."""
    info = probe(path)
    width = 640
    height = even(info["height"] * width / info["width"])
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-vf", f"fps={n / duration_s:.6f},scale={width}:{height}",
         "-frames:v", str(n), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    size = width * height * 3
    return [
        np.frombuffer(raw[k : k + size], np.uint8).reshape(height, width, 3)
        for k in range(0, len(raw) - size + 1, size)
    ]


def face_counts(paths: list[Path], durations: list[float]) -> list[list[int]]:
    """Faces the project's face landmarker (IMAGE mode, up to 3) finds in 8 frames of each path."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from extractors.registry import model_spec
    from settings.models import resolve

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(resolve(model_spec("face-landmarker")))),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=3,
        min_face_detection_confidence=0.5,
        min_face_presence_confidence=0.5,
    )
    counts = []
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        for path, duration in zip(paths, durations, strict=True):
            counts.append(
                [
                    len(
                        landmarker.detect(
                            mp.Image(image_format=mp.ImageFormat.SRGB, data=frame)
                        ).face_landmarks
                    )
                    for frame in sampled_frames(path, duration)
                ]
            )
    return counts


def eligible_sources() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One recording per test speaker (the longest) of at least 4 s with one face; and every
    test recording with why it was left out (or not)."""
    rows = list(csv.DictReader(TEST_LIST.open()))
    for row in rows:
        row["path"] = (TEST_LIST.parent / row["uri"]).resolve()
        row.update(probe(row["path"]))
    long_enough = [r for r in rows if r["duration_s"] >= MIN_SOURCE_S]
    counts = face_counts([r["path"] for r in long_enough], [r["duration_s"] for r in long_enough])
    for row, found in zip(long_enough, counts, strict=True):
        row["faces"] = found
    seen: list[dict[str, Any]] = []
    for row in rows:
        found = row.get("faces")
        if row["duration_s"] < MIN_SOURCE_S:
            row["why"] = f"shorter than {MIN_SOURCE_S:g} s"
        elif max(found, default=0) > 1:
            row["why"] = f"more than one face (faces in 8 frames: {found})"
        elif sum(c == 1 for c in found) < len(found) / 2:
            row["why"] = f"a face in fewer than half of 8 frames ({found})"
        else:
            row["why"] = ""
        seen.append(row)
    chosen: dict[str, dict[str, Any]] = {}
    for row in seen:
        best = chosen.get(row["speaker_id"])
        if not row["why"] and (best is None or row["duration_s"] > best["duration_s"]):
            chosen[row["speaker_id"]] = row
    for row in seen:
        if not row["why"] and chosen[row["speaker_id"]] is not row:
            row["why"] = "another recording of the same speaker is used"
    return [chosen[s] for s in sorted(chosen)], seen


def choose_pairs(speakers: list[str], per_kind: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """``per_kind`` ordered pairs of different speakers per kind, no pair twice, seeded, each
    speaker used about as often."""
    rng = random.Random(seed)
    candidates = [(a, b) for a in speakers for b in speakers if a != b]
    rng.shuffle(candidates)
    used: Counter[str] = Counter()
    roles: dict[str, Counter[tuple[str, int]]] = {kind: Counter() for kind in KINDS}
    taken: set[tuple[str, str]] = set()
    pairs: dict[str, list[tuple[str, str]]] = {kind: [] for kind in KINDS}
    for _ in range(per_kind):
        for kind in KINDS:
            free = [p for p in candidates if p not in taken and (p[1], p[0]) not in taken]
            if not free:
                free = [p for p in candidates if p not in taken]

            def load(p: tuple[str, str], kind: str = kind) -> tuple[int, int]:
                # least used as A or B in this kind first, then overall; ties: shuffled order
                return roles[kind][p[0], 0] + roles[kind][p[1], 1], used[p[0]] + used[p[1]]

            pair = min(free, key=load)
            taken.add(pair)
            used.update(pair)
            roles[kind].update([(pair[0], 0), (pair[1], 1)])
            pairs[kind].append(pair)
    return pairs


# ---------------------------------------------------------------------------------------------
# Composites


def frames_s(seconds: float) -> float:
    """``seconds`` rounded down to whole frames."""
    return math.floor(seconds * FPS + 1e-6) / FPS


def even(x: float) -> int:
    return max(2, 2 * round(x / 2))


def video_chain(
    k: int, width: int, height: int, seconds: float, label: str, pad: tuple[int, int] | None = None
) -> str:
    fit = f"scale={width}:{height},setsar=1"
    if pad is not None:
        fit += f",pad={pad[0]}:{pad[1]}:(ow-iw)/2:(oh-ih)/2:black"
    return (
        f"[{k}:v]setpts=PTS-STARTPTS,fps={FPS},{fit},trim=duration={seconds:.3f},setpts=PTS-STARTPTS[{label}]"
    )


def audio_chain(k: int, seconds: float, label: str) -> str:
    return (
        f"[{k}:a]asetpts=PTS-STARTPTS,aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
        f"apad=whole_dur={seconds:.3f},atrim=duration={seconds:.3f},asetpts=PTS-STARTPTS[{label}]"
    )


def encode(inputs: list[Path], graph: str, seconds: float, out: Path) -> None:
    args = [FFMPEG, "-y", "-v", "error"]
    for path in inputs:
        args += ["-i", str(path)]
    partial = out.with_name(out.stem + ".partial.mp4")
    args += [
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "[a]",
        *ENCODE,
        "-t",
        f"{seconds:.3f}",
        str(partial),
    ]
    subprocess.run(args, check=True)
    partial.replace(out)


def region(x: float, y: float, w: float, h: float, width: float, height: float) -> list[float]:
    return [round(x / width, 5), round(y / height, 5), round((x + w) / width, 5), round((y + h) / height, 5)]


def side_by_side(a: dict[str, Any], b: dict[str, Any], left_speaks: bool, out: Path) -> list[dict[str, Any]]:
    height = 360
    wa, wb = even(a["width"] * height / a["height"]), even(b["width"] * height / b["height"])
    seconds = frames_s(min(a["duration_s"], b["duration_s"], MAX_S))
    graph = ";".join(
        [
            video_chain(0, wa, height, seconds, "l"),
            video_chain(1, wb, height, seconds, "r"),
            "[l][r]hstack=inputs=2,format=yuv420p[v]",
            audio_chain(0 if left_speaks else 1, seconds, "a"),
        ]
    )
    encode([a["path"], b["path"]], graph, seconds, out)
    total = wa + wb
    left, right = region(0, 0, wa, height, total, height), region(wa, 0, wb, height, total, height)
    speaker, other = (a, b) if left_speaks else (b, a)
    return [span(0.0, seconds, left if left_speaks else right, None, speaker, other)]


def picture_in_picture(
    a: dict[str, Any], b: dict[str, Any], big_speaks: bool, out: Path
) -> list[dict[str, Any]]:
    height = 480
    wa = even(a["width"] * height / a["height"])
    wb = even(wa / 3)
    hb = even(b["height"] * wb / b["width"])
    margin = even(0.03 * height)
    x, y = wa - wb - margin, height - hb - margin
    seconds = frames_s(min(a["duration_s"], b["duration_s"], MAX_S))
    graph = ";".join(
        [
            video_chain(0, wa, height, seconds, "big"),
            video_chain(1, wb, hb, seconds, "small"),
            f"[big][small]overlay=x={x}:y={y}:eof_action=pass,format=yuv420p[v]",
            audio_chain(0 if big_speaks else 1, seconds, "a"),
        ]
    )
    encode([a["path"], b["path"]], graph, seconds, out)
    inset = region(x, y, wb, hb, wa, height)
    if big_speaks:
        return [span(0.0, seconds, [0.0, 0.0, 1.0, 1.0], inset, a, b)]
    return [span(0.0, seconds, inset, None, b, a)]


def a_then_b(a: dict[str, Any], b: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    width, height = 640, 360
    fitted = []
    for source in (a, b):
        scale = min(width / source["width"], height / source["height"])
        fitted.append((even(source["width"] * scale), even(source["height"] * scale)))
    sa = frames_s(min(a["duration_s"], MAX_S / 2))
    sb = frames_s(min(b["duration_s"], MAX_S / 2))
    graph = ";".join(
        [
            video_chain(0, *fitted[0], sa, "va", pad=(width, height)),
            audio_chain(0, sa, "aa"),
            video_chain(1, *fitted[1], sb, "vb", pad=(width, height)),
            audio_chain(1, sb, "ab"),
            "[va][aa][vb][ab]concat=n=2:v=1:a=1[vc][a]",
            "[vc]format=yuv420p[v]",
        ]
    )
    encode([a["path"], b["path"]], graph, sa + sb, out)

    def picture(w: int, h: int) -> list[float]:
        return region((width - w) // 2, (height - h) // 2, w, h, width, height)

    return [
        span(0.0, sa, picture(*fitted[0]), None, a, None),
        span(sa, sa + sb, picture(*fitted[1]), None, b, None),
    ]


def span(
    t0: float,
    t1: float,
    box: list[float],
    hole: list[float] | None,
    speaker: dict[str, Any],
    other: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "t0_s": round(t0, 3),
        "t1_s": round(t1, 3),
        **dict(zip(("x0", "y0", "x1", "y1"), box, strict=True)),
        **dict(zip(("hole_x0", "hole_y0", "hole_x1", "hole_y1"), hole or ["", "", "", ""], strict=True)),
        "speaker_id": speaker["speaker_id"],
        "other_speaker_id": other["speaker_id"] if other else "",
    }


def make_composites(out: Path, per_kind: int, seed: int) -> list[dict[str, Any]]:
    """Make the composites and their truth in ``out`` unless ``out/truth.csv`` is there; the
    composite list (``out/composites.csv``) either way."""
    listing, truth = out / "composites.csv", out / "truth.csv"
    if truth.exists() and listing.exists():
        rows = list(csv.DictReader(listing.open()))
        if all((out / r["file"]).exists() for r in rows):
            print(f"composites: {len(rows)} already in {out}", flush=True)
            return rows
    out.mkdir(parents=True, exist_ok=True)
    sources, seen = eligible_sources()
    for row in seen:
        print(f"  {Path(row['uri']).name:48s} {row['duration_s']:6.2f} s  {row['why'] or 'used'}", flush=True)
    by_speaker = {s["speaker_id"]: s for s in sources}
    pairs = choose_pairs(sorted(by_speaker), per_kind, seed)
    rows, spans = [], []
    for kind in KINDS:
        for k, (sa, sb) in enumerate(pairs[kind]):
            a, b = by_speaker[sa], by_speaker[sb]
            name = f"{kind}_{k:02d}"
            path = out / f"{name}.mp4"
            if kind == "side_by_side":
                parts = side_by_side(a, b, k % 2 == 0, path)
                sound = "left (A)" if k % 2 == 0 else "right (B)"
            elif kind == "pip":
                parts = picture_in_picture(a, b, k % 2 == 0, path)
                sound = "big (A)" if k % 2 == 0 else "small (B)"
            else:
                parts = a_then_b(a, b, path)
                sound = "A then B"
            rows.append(
                {
                    "composite": name,
                    "file": path.name,
                    "kind": kind,
                    "a": sa,
                    "b": sb,
                    "sound": sound,
                    "duration_s": parts[-1]["t1_s"],
                    "a_uri": str(a["path"]),
                    "b_uri": str(b["path"]),
                }
            )
            spans += [{"composite": name, "kind": kind, **p} for p in parts]
            print(f"  {name}: A={sa} B={sb}, sound of {sound}, {parts[-1]['t1_s']:.2f} s", flush=True)
    with truth.with_suffix(".partial").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRUTH_COLUMNS)
        writer.writeheader()
        writer.writerows(spans)
    with listing.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    truth.with_suffix(".partial").replace(truth)  # last: its presence says the set is complete
    return [{k: str(v) for k, v in r.items()} for r in rows]


# ---------------------------------------------------------------------------------------------
# Run and evaluation


def run_pipeline(out: Path, root: Path, executor: str | None, fresh: bool) -> None:
    if fresh and root.exists():
        if not (root / "_log").exists() and any(root.iterdir()):
            sys.exit(f"--fresh: {root} does not look like a dataset root; not removed")
        shutil.rmtree(root)
    args = [str(REPO / ".venv" / "bin" / "curate"), "run", str(out), "--out", str(root), "--no-progress"]
    if not Path(args[0]).exists():
        args = [sys.executable, "-m", "curate.cli", *args[1:]]
    if executor:
        args += ["--executor", executor]
    print("$ " + " ".join(args), flush=True)
    subprocess.run(args, check=True)


#: Clip columns read when the root has them (not every version of the face extractor writes them).
OPTIONAL_CLIP_COLUMNS = ("face_unresolved_rate", "face_tracks", "face_subject_by", "identity_parts")


def clip_sql(columns: set[str]) -> str:
    optional = "".join(
        f", c.{name}" if name in columns else f", null as {name}" for name in OPTIONAL_CLIP_COLUMNS
    )
    return f"""
select v.uri, c.clip_id, c.start_s, c.end_s, c.cut_start, c.cut_end, c.duration_s, c.speech_ratio, c.sync_speech_s,
       c.face_multi_rate, c.face_count_max{optional}, t.t_s, t.face_box, d.verdict, d.reasons
from clips c
join videos v using (video_id)
left join tracks t using (clip_id)
left join current_decisions d using (clip_id)
order by v.uri, c.start_s
"""


def read_truth(out: Path) -> dict[str, list[dict[str, Any]]]:
    truth: dict[str, list[dict[str, Any]]] = {}
    for row in csv.DictReader((out / "truth.csv").open()):
        hole = [row[f"hole_{c}"] for c in ("x0", "y0", "x1", "y1")]
        truth.setdefault(row["composite"], []).append(
            {
                "kind": row["kind"],
                "t0": float(row["t0_s"]),
                "t1": float(row["t1_s"]),
                "box": [float(row[c]) for c in ("x0", "y0", "x1", "y1")],
                "hole": [float(v) for v in hole] if all(hole) else None,
                "speaker_id": row["speaker_id"],
            }
        )
    return truth


def inside(x: float, y: float, box: list[float] | None) -> bool:
    return box is not None and box[0] <= x <= box[2] and box[1] <= y <= box[3]


def in_speaker(x: float, y: float, part: dict[str, Any]) -> bool:
    return inside(x, y, part["box"]) and not inside(x, y, part["hole"])


def judge(kind: str, spans: list[dict[str, Any]], times: list[float], boxes: list[Any]) -> dict[str, Any]:
    """Whether the subject's face (``boxes`` per frame at ``times``) is the speaker's."""
    centres = []
    for t, box in zip(times or [], boxes or [], strict=True):
        part = next((p for p in spans if p["t0"] <= t < p["t1"]), None)
        if box is not None and part is not None:
            centres.append(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, part))
    if not centres:
        return {"subject": "none", "face_frames": 0, "right_share": None, "centre": None}
    if kind == "a_then_b":
        share = float(np.mean([in_speaker(x, y, p) for x, y, p in centres]))
        right = share >= RIGHT_FRAMES
        centre = None
    else:
        x, y = float(np.mean([c[0] for c in centres])), float(np.mean([c[1] for c in centres]))
        right = in_speaker(x, y, centres[0][2])
        share = float(np.mean([in_speaker(cx, cy, p) for cx, cy, p in centres]))
        centre = [round(x, 3), round(y, 3)]
    return {
        "subject": "right" if right else "wrong",
        "face_frames": len(centres),
        "right_share": round(share, 3),
        "centre": centre,
    }


def evaluate(out: Path, root: Path) -> list[dict[str, Any]]:
    from curate.query import query

    truth = read_truth(out)
    columns = set(query(root, "select * from clips limit 0").column_names)
    clips = []
    for row in query(root, clip_sql(columns)).to_pylist():
        name = Path(row["uri"]).stem
        if name not in truth:
            continue
        spans = truth[name]
        kind = spans[0]["kind"]
        duration = row["duration_s"] if row["duration_s"] is not None else row["end_s"] - row["start_s"]
        speech = row["speech_ratio"] * duration if row["speech_ratio"] is not None else row["sync_speech_s"]
        # speakers whose span covers at least 0.5 s of the clip
        speakers = sorted(
            {
                p["speaker_id"]
                for p in spans
                if min(p["t1"], row["end_s"]) - max(p["t0"], row["start_s"]) >= 0.5
            }
        )
        clips.append(
            {
                "composite": name,
                "kind": kind,
                "clip_id": row["clip_id"],
                "start_s": round(row["start_s"], 3),
                "end_s": round(row["end_s"], 3),
                "speech_s": round(speech, 2) if speech is not None else None,
                "sync_speech_s": round(row["sync_speech_s"], 2) if row["sync_speech_s"] is not None else None,
                "face_multi_rate": round(row["face_multi_rate"], 3)
                if row["face_multi_rate"] is not None
                else None,
                "face_count_max": row["face_count_max"],
                "face_unresolved_rate": round(row["face_unresolved_rate"], 3)
                if row["face_unresolved_rate"] is not None
                else None,
                "face_tracks": row["face_tracks"],
                "face_subject_by": row["face_subject_by"],
                "cut_into": row["identity_parts"] or 0,  # parts made of it where its speaker changes
                "speaker_part": "speaker" in (row["cut_start"], row["cut_end"]),
                "speakers": speakers,
                **judge(kind, spans, row["t_s"], row["face_box"]),
                "verdict": row["verdict"] or "none",
                "reasons": list(row["reasons"] or []),
            }
        )
    return clips


def runs(root: Path) -> list[str]:
    """The runs that wrote the root's videos (what was measured)."""
    from curate.query import query

    return sorted(r["run_id"] for r in query(root, "select distinct run_id from videos").to_pylist())


def summary(clips: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(clips)
    if not n:
        return {"clips": 0}
    rejected = [c for c in clips if c["verdict"] == "reject"]
    verdicts = Counter(c["verdict"] for c in clips)
    return {
        "clips": n,
        "right_subject": sum(c["subject"] == "right" for c in clips),
        "right_subject_share": round(sum(c["subject"] == "right" for c in clips) / n, 3),
        "no_face": sum(c["subject"] == "none" for c in clips),
        "rejected_share": round(verdicts["reject"] / n, 3),
        "review_share": round(verdicts["review"] / n, 3),
        "accepted_share": round(verdicts["accept"] / n, 3),
        "verdicts": dict(sorted(verdicts.items())),
        "reject_reasons": dict(Counter(r for c in rejected for r in c["reasons"]).most_common()),
        # the composites reuse recordings' sound, so the duplicate filter rejects most of them
        "rejected_besides_duplicate_share": round(
            sum(any(r != "duplicate" for r in c["reasons"]) for c in rejected) / n, 3
        ),
        # a clip across the speaker change (a_then_b not cut there) mixes two people's faces,
        # which the region test cannot see while one face shows at a time
        "two_speakers_in_clip": sum(len(c["speakers"]) >= 2 for c in clips),
        "two_speakers_accepted_or_review": sum(
            len(c["speakers"]) >= 2 and c["verdict"] in ("accept", "review") for c in clips
        ),
        "subject_by": dict(
            Counter((c["face_subject_by"] or "-").split(":")[0].split(" (")[0] for c in clips).most_common()
        ),
        "right_subject_accepted_or_review": sum(
            c["subject"] == "right" and c["verdict"] in ("accept", "review") for c in clips
        ),
        "speaker_parts": sum(c["speaker_part"] for c in clips),
    }


def figures(clips: list[dict[str, Any]]) -> dict[str, Any]:
    """The summaries by kind and speech; a clip cut where its speaker changes is left out (its
    parts, clips of their own, stand for it) and counted apart."""
    cut = [c for c in clips if c["cut_into"]]
    clips = [c for c in clips if not c["cut_into"]]
    speech = [c for c in clips if (c["speech_s"] or 0) >= MIN_SPEECH_S]
    short = [c for c in clips if (c["speech_s"] or 0) < MIN_SPEECH_S]
    return {
        "speech_at_least_2s": {
            "all": summary(speech),
            **{kind: summary([c for c in speech if c["kind"] == kind]) for kind in KINDS},
        },
        "speech_under_2s": {
            "all": summary(short),
            **{kind: summary([c for c in short if c["kind"] == kind]) for kind in KINDS},
        },
        "cut_at_speaker_change": {
            "clips": len(cut),
            "parts": sum(c["cut_into"] for c in cut),
            "by_kind": dict(Counter(c["kind"] for c in cut)),
        },
    }


def print_figures(result: dict[str, Any], clips: list[dict[str, Any]]) -> None:
    print("\nper clip:")
    for c in clips:
        print(
            f"  {c['composite']:16s} {c['start_s']:6.2f}-{c['end_s']:6.2f} s  speech {c['speech_s'] or 0:5.2f} s  "
            f"subject {c['subject']:5s} ({c['right_share'] if c['right_share'] is not None else '-'})  "
            f"multi {c['face_multi_rate'] if c['face_multi_rate'] is not None else '-'}  "
            f"{c['verdict']:6s} {','.join(c['reasons'])}  [{c['face_subject_by'] or '-'}]"
        )
    for group, title in (("speech_at_least_2s", ">= 2 s of speech"), ("speech_under_2s", "< 2 s of speech")):
        print(f"\nclips with {title}:")
        print(
            f"  {'kind':14s} {'clips':>5s} {'right':>11s} {'rejected':>9s} {'(not dup)':>9s} {'review':>7s} "
            f"{'accepted':>9s} {'2 spk':>5s}  reject reasons"
        )
        for kind, s in result[group].items():
            if not s["clips"]:
                print(f"  {kind:14s} {0:5d}")
                continue
            print(
                f"  {kind:14s} {s['clips']:5d} {s['right_subject']:3d} ({s['right_subject_share']:4.0%}) "
                f"{s['rejected_share']:9.0%} {s['rejected_besides_duplicate_share']:9.0%} {s['review_share']:7.0%} "
                f"{s['accepted_share']:9.0%} {s['two_speakers_in_clip']:5d}  "
                + ", ".join(f"{r} {k}" for r, k in s["reject_reasons"].items())
            )


def code_version() -> str:
    """The checkout's commit, and whether files differ from it (what ``curate run`` ran with)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="folder of the composites (made once, reused)"
    )
    parser.add_argument("--root", type=Path, help="dataset root of the run (default: OUT + '_root')")
    parser.add_argument("--make-only", action="store_true", help="make the composites, run nothing")
    parser.add_argument("--eval-only", action="store_true", help="evaluate ROOT as it is, run nothing")
    parser.add_argument(
        "--fresh", action="store_true", help="remove ROOT before the run (measure changed code)"
    )
    parser.add_argument(
        "--executor", default="sequential", help="curate run --executor (default: sequential)"
    )
    parser.add_argument("--per-kind", type=int, default=6, help="composites of each kind (default 6)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = args.out.resolve()
    root = (args.root or out.with_name(out.name + "_root")).resolve()
    composites = make_composites(out, args.per_kind, args.seed)
    if args.make_only:
        return
    code = "root evaluated as it was (--eval-only)"
    if not args.eval_only:
        code = code_version()
        run_pipeline(out, root, args.executor, args.fresh)
    clips = evaluate(out, root)
    result = {
        "composites": {
            kind: [
                f"{r['composite']}: {r['a']} + {r['b']}, sound of {r['sound']}"
                for r in composites
                if r["kind"] == kind
            ]
            for kind in KINDS
        },
        **figures(clips),
        "clips": clips,
        "root": str(root),
        "code": code,
        "runs": runs(root),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print_figures(result, clips)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
