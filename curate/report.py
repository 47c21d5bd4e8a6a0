"""``curate report``: one self-contained HTML page about a dataset root.

Sections: summary, verdicts by reason, score distributions with the filter thresholds, emotion
mix, languages, the clips most likely generated, per-channel blendshape statistics, the ARKit calibration's before/after ranges
(when ``curate calibrate`` made one), and example clips (a frame and their curves).
Plots are matplotlib PNGs and frames JPEGs, both inlined as base64: the page needs no network.
Everything is read through the DuckDB views of :mod:`manifests.views`; nothing is written but
the page.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import Any

import cv2
import duckdb
import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from curate.arkit_fit import CALIBRATION
from curate.filter import NoClips
from extractors.base import square_crop
from extractors.emotion.fusion import EMOTION_CLASSES
from extractors.identity.extractor import IdentityConfig
from extractors.registry import dataset_schemas, in_effect, make_config
from filters.rules import bands
from ingest.media import iter_frames_at_rate
from manifests.arkit_map import QUANTILES, Calibration, CalibrationError
from manifests.schema import BLENDSHAPE_NAMES
from manifests.store import existing_root
from manifests.views import connect
from review.annotators import review_state
from review.filter_agreement import NoReviews, calibrate
from settings.config import Config

NOT_SCORES = {"clip_index", "start_s", "end_s", "fps"}  # numeric, but positions rather than scores
CURVES = ("jawOpen", "mouthClose", "mouthSmileLeft", "browInnerUp", "eyeBlinkLeft")
EXAMPLES = 4
#: Clips listed under "Synthetic faces".
SUSPECTS = 10
FRAME_WIDTH = 320  # px, widest embedded frame
IDENTITIES = 24  # people shown
FACE_PX = 96  # side of an identity's face picture
NEAR_ZERO = 0.01  # a channel whose p95 is below this barely moves
VERDICT_COLORS = {"accept": "#2e7d32", "review": "#ef6c00", "reject": "#c62828"}
STYLE = """body{font-family:sans-serif;margin:2em auto;max-width:1200px;color:#222}
figure{display:inline-block;margin:.5em;vertical-align:top}figcaption{font-size:.85em;max-width:420px}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px}
.cols{columns:3}.grid{display:grid;grid-template-columns:repeat(3,1fr)}.card{display:flex;gap:1em;border-top:1px solid #ddd;padding:.5em 0}.muted{color:#777}"""
ON_LOAD = """<script>window.addEventListener("load",function(){var i=Array.from(document.images);
document.body.dataset.rendered=i.filter(function(m){return m.complete&&m.naturalWidth>0}).length+"/"+i.length;});
</script>"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    return con.sql(sql).to_arrow_table().to_pylist()


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(src: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def _bars(counts: dict[str, int], xlabel: str, ylabel: str, caption: str) -> str:
    """A horizontal bar chart of ``label -> count``, largest at the top."""
    items = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    fig = Figure(figsize=(5, 0.4 * len(items) + 1))
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4a78b0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _figure(_png(fig), caption)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def summary(con: duckdb.DuckDBPyConnection) -> str:
    """Counts of videos, clips, failed clips, seconds and current verdicts."""
    (s,) = _rows(
        con,
        "select (select count(*) from videos) videos, count(*) clips,"
        " count(*) filter (where cardinality(errors) > 0) failed, sum(duration_s) as total_s,"
        " count(*) filter (where video_id not in (select video_id from videos)) orphans from clips",
    )
    verdicts = {
        r["verdict"]: r["n"]
        for r in _rows(con, "select verdict, count(*) n from current_decisions group by 1")
    }
    if verdicts:
        verdict_text = ", ".join(f"{v}: {verdicts.get(v, 0)}" for v in VERDICT_COLORS)
    else:
        verdict_text = "no decisions yet: run <code>curate filter ROOT</code> to judge the clips"
    partial = (
        f"<li><b>partial run:</b> {s['orphans']} clip(s) are committed before their video's row"
        " (a run in progress, or one that stopped: <code>curate run</code> again resumes it)</li>"
        if s["orphans"]
        else ""
    )
    return (
        f"<ul>{partial}<li>videos: {s['videos']}</li><li>clips: {s['clips']}</li>"
        f"<li>clips with recorded failures: {s['failed']}</li>"
        f"<li>total clip seconds: {s['total_s'] or 0:.1f}</li><li>verdicts: {verdict_text}</li></ul>"
    )


def verdict_reasons(con: duckdb.DuckDBPyConnection) -> str:
    """Current verdicts per reason (stacked by verdict) and the recorded failures per stage."""
    rows = _rows(
        con,
        "select r reason, verdict, count(*) n from (select verdict, unnest(if(len(reasons) = 0,"
        " ['(no reason)'], reasons)) r from current_decisions) group by all order by reason",
    )
    out = ""
    if rows:
        reasons = sorted({r["reason"] for r in rows})
        fig = Figure(figsize=(6, 0.4 * len(reasons) + 1))
        ax = fig.subplots()
        left = np.zeros(len(reasons))
        for verdict, color in VERDICT_COLORS.items():
            n = np.array(
                [sum(r["n"] for r in rows if r["reason"] == k and r["verdict"] == verdict) for k in reasons]
            )
            ax.barh(reasons, n, left=left, color=color, label=verdict)
            left += n
        ax.set_xlabel("clips")
        ax.set_ylabel("reason")
        ax.legend()
        out += _figure(_png(fig), "Current verdict of each clip by reason (a clip counts once per reason).")
    else:
        out += '<p class="muted">No decisions yet: run <code>curate filter ROOT</code>.</p>'
    failures = _rows(
        con, "select level, stage, reason, count(*) as count from failures group by all order by count desc"
    )
    return out + "<h3>Recorded failures by stage</h3>" + _table(failures)


def score_distributions(clips: pa.Table, config: Config, docs: dict[str, str]) -> str:
    """A histogram per numeric clip column, with the filter's limits (lines) and review bands (shaded)."""
    rules = list(in_effect(config).active.values())
    out = []
    for f in clips.schema:
        if f.name in NOT_SCORES or not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)):
            continue
        values = np.array([v for v in clips.column(f.name).to_pylist() if v is not None], dtype=float)
        if len(values) < 2:
            continue
        fig = Figure(figsize=(4, 2.6))
        ax = fig.subplots()
        ax.hist(values, bins=20, color="#4a78b0")
        limits = []
        for rule in (r for r in rules if r.column == f.name):
            for limit, low, high in bands(rule):
                ax.axvline(limit, color="#c62828")
                if high > low:
                    ax.axvspan(low, high, color="#ef6c00", alpha=0.2)
                limits.append(f"{limit:g} ± {rule.band:g}")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(f.name)
        ax.set_ylabel("clips")
        caption = f"{f.name}: {docs.get(f.name, '')} (n={len(values)})"
        if limits:
            caption += "; filter limit " + ", ".join(limits) + " (line; review band shaded)"
        out.append(_figure(_png(fig), caption))
    return (
        f'<div class="grid">{"".join(out)}</div>'
        if out
        else '<p class="muted">No numeric clip column has two values yet.</p>'
    )


def emotion_mix(con: duckdb.DuckDBPyConnection, columns: set[str]) -> str:
    """Counts of the dominant emotion, and the mean class probabilities when their names are known."""
    out = ""
    if "emotion_dominant" in columns:
        counts = {
            r["e"]: r["n"]
            for r in _rows(
                con,
                "select coalesce(m.emotion, if(c.emotion_probs is null, '(not measured)', "
                "'(uncertain)')) e, count(*) n from clips c join clip_emotion m using (clip_id) group by 1",
            )
        }
        out += _bars(
            counts,
            "clips",
            "emotion label",
            "Emotion label of each clip as exported (a reviewer's, else judged against the speaker's other "
            "clips where the root has several, else the clip's own; uncertain: confidence under "
            "[emotion] min_confidence).",
        )
    classes = list(EMOTION_CLASSES)
    if "emotion_probs" in columns:
        probs = [
            r["p"] for r in _rows(con, "select emotion_probs p from clips where emotion_probs is not null")
        ]
        if probs and all(len(p) == len(classes) for p in probs):
            fig = Figure(figsize=(5, 2.8))
            ax = fig.subplots()
            ax.bar(classes, np.mean(np.array(probs, dtype=float), axis=0), color="#4a78b0")
            ax.tick_params(axis="x", labelrotation=45)
            ax.set_xlabel("emotion class")
            ax.set_ylabel("mean probability")
            out += _figure(_png(fig), f"emotion_probs averaged over {len(probs)} clips.")
    return out or '<p class="muted">No emotion columns in this root.</p>'


def languages(con: duckdb.DuckDBPyConnection, columns: set[str]) -> str:
    """Clips per detected spoken language (none: no speech or no audio)."""
    if "speech_language" not in columns:
        return '<p class="muted">No speech_language column in this root.</p>'
    rows = _rows(con, "select coalesce(speech_language, '(none)') l, count(*) n from clips group by 1")
    return _bars(
        {r["l"]: r["n"] for r in rows}, "clips", "language", "Clips per spoken language (ISO 639-1)."
    )


def synthetic_faces(con: duckdb.DuckDBPyConnection, columns: set[str]) -> str:
    """The clips not rejected most likely generated, with the cue that says so most strongly."""
    if "synthetic_score" not in columns:
        return '<p class="muted">No synthetic_score column in this root.</p>'
    rows = _rows(
        con,
        "select coalesce(regexp_extract(v.uri, '[^/]+$'), c.video_id) file, c.clip_index clip, round(c.synthetic_score, 3) score,"
        " c.synthetic_strongest strongest_cue, coalesce(d.verdict, '') verdict"
        " from clips c left join videos v on v.video_id = c.video_id"
        " left join current_decisions d on d.clip_id = c.clip_id"
        " where c.synthetic_score is not null and coalesce(d.verdict, '') != 'reject'"
        f" order by c.synthetic_score desc limit {SUSPECTS}",
    )
    return (
        "<p>Clips not rejected, by the probability that the face was produced by a model (docs/scores.md:"
        " a weak score; the rule synthetic_face, off by default, only sends clips to review).</p>"
        + _table(rows)
    )


def review_progress(con: duckdb.DuckDBPyConnection, root: Path, config: Config) -> str:
    """Clips waiting for review and reviewed, agreement, the annotators, and the limits human
    verdicts would move (``curate review annotators`` and ``calibrate``)."""
    (counts,) = _rows(
        con,
        "select count(*) filter (where verdict = 'review') waiting,"
        " count(*) filter (where source = 'review') reviewed, count(*) filter (where source = 'gold') gold"
        " from current_decisions",
    )
    text = (
        f"<ul><li>clips waiting for review: {counts['waiting']}</li>"
        f"<li>clips with a verdict from their annotators: {counts['reviewed']}</li>"
        f"<li>gold clips: {counts['gold']}</li></ul>"
    )
    state = review_state(existing_root(root), config.review)
    if not state.annotations:
        return text + '<p class="muted">No annotations pulled yet (<code>curate review pull</code>).</p>'
    alpha = "-" if state.alpha is None else f"{state.alpha:.2f}"
    text += f"<p>{len(state.annotations)} annotations; Krippendorff's alpha {alpha} (1: full agreement, 0: chance).</p>"
    text += _table(
        [
            {"filter reason": k, "alpha": "-" if v is None else f"{v:.2f}"}
            for k, v in state.alpha_by_reason.items()
        ]
    )
    text += _table(
        [
            {
                "annotator": a.who,
                "annotations": a.annotations,
                "gold seen": a.gold_seen,
                "accuracy on gold": "-" if a.gold_accuracy is None else f"{a.gold_accuracy:.0%}",
                "agrees with verdicts": "-" if a.agreement is None else f"{a.agreement:.0%}",
                "estimated accuracy": f"{a.estimated_accuracy:.0%}",
                "flagged": "yes" if a.flagged else "",
            }
            for a in state.annotators
        ]
    )
    try:
        calibration = calibrate(root, config)
    except NoReviews:
        return text
    return text + f"<pre>{escape(calibration.to_text())}</pre>"


def blendshape_stats(con: duckdb.DuckDBPyConnection) -> str:
    """Mean, p5 and p95 of every channel over all frames with a face; near-zero channels flagged."""
    rows = _rows(
        con,
        "with f as (select unnest(blendshapes) b from tracks),"
        " v as (select generate_subscripts(b, 1) i, unnest(b) x from f where b is not null)"
        " select i, avg(x) mean, quantile_cont(x, 0.05) p5, quantile_cont(x, 0.95) p95, count(*) n"
        " from v group by i order by i",
    )
    if not rows:
        return '<p class="muted">No frames with a face.</p>'
    names = [BLENDSHAPE_NAMES[r["i"] - 1] for r in rows]
    mean, p5, p95 = (np.array([r[k] for r in rows], dtype=float) for k in ("mean", "p5", "p95"))
    fig = Figure(figsize=(14, 4))
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.bar(x, mean, color=["#999" if q < NEAR_ZERO else "#4a78b0" for q in p95])
    # The mean of a skewed channel can lie outside its p5..p95 band: that whisker is then empty.
    ax.errorbar(
        x,
        mean,
        yerr=[np.clip(mean - p5, 0, None), np.clip(p95 - mean, 0, None)],
        fmt="none",
        ecolor="#333",
        lw=0.8,
    )
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_xlabel("blendshape channel")
    ax.set_ylabel("value (0..1)")
    caption = (
        f"Per-channel mean (bar) and p5..p95 (whiskers) over {rows[0]['n']} frames with a face;"
        f" grey: near zero (p95 < {NEAR_ZERO})."
    )
    table = [
        {
            "channel": n,
            "mean": f"{m:.3f}",
            "p5": f"{a:.3f}",
            "p95": f"{b:.3f}",
            "": "near zero" if b < NEAR_ZERO else "",
        }
        for n, m, a, b in zip(names, mean, p5, p95, strict=True)
    ]
    return _figure(_png(fig), caption) + f'<div class="cols">{_table(table)}</div>'


def calibration_ranges(path: Path) -> str:
    """The root's ARKit calibration (``curate calibrate``): each channel's p5..p95 and median
    before (as MediaPipe measured) and after (mapped onto the capture's ranges)."""
    if not path.exists():
        return '<p class="muted">No calibration: <code>curate calibrate ROOT --capture take.csv</code> fits one.</p>'
    try:
        calibration = Calibration.load(path)
    except CalibrationError as exc:
        return f'<p class="muted">{escape(str(exc))}</p>'
    lo, mid, hi = (QUANTILES.index(q) for q in (0.05, 0.5, 0.95))
    fig = Figure(figsize=(14, 4))
    ax = fig.subplots()
    x = np.arange(len(calibration.names))
    for knots, shift, color, label in (
        (np.asarray(calibration.source), -0.18, "#999", "before (MediaPipe)"),
        (np.asarray(calibration.target), 0.18, "#4a78b0", f"after (ranges of {calibration.capture})"),
    ):
        ax.errorbar(
            x + shift,
            knots[:, mid],
            yerr=[knots[:, mid] - knots[:, lo], knots[:, hi] - knots[:, mid]],
            fmt="o",
            ms=3,
            color=color,
            lw=1.2,
            label=label,
        )
    ax.set_xticks(x, calibration.names, rotation=90, fontsize=7)
    ax.set_xlabel("blendshape channel")
    ax.set_ylabel("value (0..1)")
    ax.legend(loc="upper right", fontsize=8)
    caption = (
        f"Median (dot) and p5..p95 (bar) of each channel over {calibration.frames} frames of accepted"
        f" clips, before and after the quantile map fitted against {calibration.capture}."
    )
    return _figure(_png(fig), caption)


def _frame(uri: str, t_s: float) -> str:
    """The frame shown at ``t_s`` as a JPEG data URI, at most FRAME_WIDTH wide."""
    frame = next(iter_frames_at_rate(Path(uri), t_s, t_s + 0.5, 2.0), None)
    if frame is None:
        raise ValueError("no frame decoded")
    image = frame.image
    if image.shape[1] > FRAME_WIDTH:
        height = round(image.shape[0] * FRAME_WIDTH / image.shape[1])
        image = cv2.resize(image, (FRAME_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


def _face(uri: str, t_s: float, box: list[float]) -> str:
    """The face in ``box`` (normalised x0, y0, x1, y1) of the frame shown at ``t_s``, a JPEG data URI."""
    frame = next(iter_frames_at_rate(Path(uri), t_s, t_s + 0.5, 2.0), None)
    if frame is None:
        raise ValueError("no frame decoded")
    crop, _ = square_crop(frame.image, box)
    crop = cv2.resize(crop, (FACE_PX, FACE_PX), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


def identities(con: duckdb.DuckDBPyConnection, columns: set[str], min_voice_match: float) -> str:
    """The people of the root, most seconds first: a face of each (its founding clip's middle face
    frame), its clips and seconds, and how many are accepted; then the clips whose voice is not
    their person's (``voice_matches`` under ``min_voice_match``)."""
    if "identity_id" not in columns:
        return '<p class="muted">No identities in this root (the identity signal did not run).</p>'
    rows = _rows(
        con,
        'select c.identity_id, count(*) clips, round(sum(c.duration_s), 1) as "seconds",'
        " count(*) filter (where d.verdict = 'accept') accepted,"
        " arg_min(v.uri, c.clip_id) uri, arg_min(t.t_s, c.clip_id) t_s, arg_min(t.face_box, c.clip_id) boxes"
        " from clips c join tracks t using (clip_id) left join videos v on v.video_id = c.video_id"
        " left join current_decisions d on d.clip_id = c.clip_id"
        f" where c.identity_id is not null group by 1 order by seconds desc, 1 limit {IDENTITIES}",
    )
    if not rows:
        return '<p class="muted">No clip has an identity yet.</p>'
    ((people,),) = con.sql("select count(distinct identity_id) from clips").fetchall()
    cards = []
    for r in rows:
        faces = [(t, b) for t, b in zip(r["t_s"] or [], r["boxes"] or [], strict=False) if b is not None]
        try:
            if not faces or r["uri"] is None:
                raise ValueError("no face frame at hand")
            t_s, box = faces[len(faces) // 2]
            picture = f'<img src="{_face(r["uri"], t_s, box)}" alt="{escape(r["identity_id"])}">'
        except Exception as exc:  # a moved or remote video: the card still shows the counts
            picture = f'<p class="muted">face unavailable: {escape(str(exc))}</p>'
        cards.append(
            f'<div class="card">{picture}<div><b>{escape(r["identity_id"])}</b><br>{r["clips"]} clip(s),'
            f" {r['seconds']} s, {r['accepted']} accepted</div></div>"
        )
    return (
        f"<p>{people} people by face (identity_id: the subject's face descriptor, clustered over the root;"
        f" docs/scores.md), the {len(rows)} with the most seconds shown.</p>"
        + "".join(cards)
        + other_voices(con, min_voice_match)
    )


def other_voices(con: duckdb.DuckDBPyConnection, min_voice_match: float) -> str:
    """A table of the clips whose voice does not match their person's other clips (voice-over,
    dubbing, a generated face on another's speech), lowest match first."""
    ((checked,),) = con.sql("select count(*) from voice_matches").fetchall()
    rows = _rows(
        con,
        "select coalesce(regexp_extract(v.uri, '[^/]+$'), c.video_id) name, c.clip_index, m.identity_id,"
        " round(m.voice_match, 2) voice_match, m.other_voices from voice_matches m join clips c using (clip_id)"
        f" left join videos v on v.video_id = c.video_id where m.voice_match < {float(min_voice_match)}"
        f" order by m.voice_match, name limit {IDENTITIES}",
    )
    head = (
        f"<p>Voice check: {checked} clip(s) whose person has another clip with a voice; {len(rows)} sound like"
        f" someone else (voice match under {min_voice_match}: voice-over, dubbing; view voice_matches).</p>"
    )
    return head + _table(rows) if rows else head


def examples(con: duckdb.DuckDBPyConnection, columns: set[str]) -> str:
    """Up to EXAMPLES clips with blendshapes, accepted first: a middle frame beside five curves."""
    text = "c.speech_text" if "speech_text" in columns else "null"
    rows = _rows(
        con,
        f"select coalesce(regexp_extract(v.uri, '[^/]+$'), c.video_id) name, v.uri, c.clip_index, c.start_s, c.end_s,"
        f" {text} speech_text, d.verdict, d.reasons, t.t_s, t.blendshapes"
        " from clips c join tracks t using (clip_id) left join videos v on v.video_id = c.video_id"
        " left join current_decisions d on d.clip_id = c.clip_id"
        " where len(list_filter(t.blendshapes, lambda b: b is not null)) > 0"
        f" order by d.verdict = 'accept' desc nulls last, name, c.clip_index limit {EXAMPLES}",
    )
    cards = []
    for r in rows:
        try:
            if r["uri"] is None:
                raise ValueError("its video's row is not committed yet (partial run)")
            frame = _frame(r["uri"], (r["start_s"] + r["end_s"]) / 2)
            picture = f'<img src="{frame}" alt="middle frame of {escape(r["name"])}">'
        except Exception as exc:  # a moved or remote video: the card still shows the curves
            picture = f'<p class="muted">frame unavailable: {escape(str(exc))}</p>'
        nan = [np.nan] * len(BLENDSHAPE_NAMES)
        values = np.array([b if b is not None else nan for b in r["blendshapes"]], dtype=float)
        fig = Figure(figsize=(6, 2.6))
        ax = fig.subplots()
        for name in CURVES:
            ax.plot(r["t_s"], values[:, BLENDSHAPE_NAMES.index(name)], label=name, lw=1)
        ax.set_xlabel("source time (s)")
        ax.set_ylabel("blendshape value")
        ax.legend(fontsize=7, loc="upper right")
        reasons = ", ".join(r["reasons"] or [])
        info = (
            f"<b>{escape(r['name'])}</b> clip {r['clip_index']} ({r['start_s']:.2f}–{r['end_s']:.2f} s):"
            f" {escape(r['verdict'] or 'no decision')}{escape(' (' + reasons + ')' if reasons else '')}"
            f"<br><i>{escape(r['speech_text'] or '(no transcript)')}</i>"
        )
        curves = _figure(_png(fig), f"Five channels of {r['name']} over the clip; gaps: no face.")
        cards.append(f'<div class="card">{picture}<div>{info}<br>{curves}</div></div>')
    return "".join(cards) or '<p class="muted">No clip has blendshapes.</p>'


def _sections(con: duckdb.DuckDBPyConnection, config: Config, root: Path) -> list[tuple[str, str]]:
    clips = con.sql("select * from clips order by clip_id").to_arrow_table()
    columns = set(clips.column_names)
    docs = {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in dataset_schemas()["clips"]}
    faces = "blendshapes" in {c for (c, *_) in con.sql("describe tracks").fetchall()}
    no_faces = '<p class="muted">No blendshapes column in the tracks table.</p>'
    return [
        ("Summary", summary(con)),
        ("Verdicts by reason", verdict_reasons(con)),
        ("Score distributions", score_distributions(clips, config, docs)),
        ("Emotion mix", emotion_mix(con, columns)),
        ("Languages", languages(con, columns)),
        ("Synthetic faces", synthetic_faces(con, columns)),
        ("Identities", identities(con, columns, config.section("identity", IdentityConfig).voice_min_match)),
        ("Review", review_progress(con, root, config)),
        ("Blendshape channels", blendshape_stats(con) if faces else no_faces),
        ("Calibration to ARKit ranges", calibration_ranges(root / CALIBRATION)),
        ("Example clips", examples(con, columns) if faces else no_faces),
    ]


def write_report(root: str | Path, out: Path | None = None, config: Config | None = None) -> Path:
    """Write the HTML report of the dataset root ``root`` to ``out`` (default ``ROOT/report.html``).

    ``config`` gives the filter thresholds drawn on the histograms (default: the defaults).
    Raises :class:`~manifests.store.NoSuchRoot` or :class:`~manifests.store.NotARoot` when
    ``root`` is missing or no root, :class:`NoClips` when it has no clips.
    """
    dataset = existing_root(root)
    if not dataset.parts("clips"):
        raise NoClips(f"{dataset.path} has no clips: run `curate run` first")
    con = connect(dataset, dataset_schemas())
    try:
        sections = _sections(con, config or make_config(), dataset.path)
    finally:
        con.close()
    body = "".join(f"<h2>{title}</h2>\n{content}\n" for title, content in sections)
    title = f"Dataset report: {escape(str(dataset.path))}"
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><h1>{title}</h1>\n{body}{ON_LOAD}</body></html>\n"
    )
    if out is None:  # in the root: written beside and renamed, so a link there is replaced, not followed
        dataset.storage.write_bytes("report.html", page.encode("utf-8"))
        return dataset.path / "report.html"
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
