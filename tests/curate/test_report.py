"""`curate report` over the fixture run: every section is there, and the page renders offline in
headless Chromium with every image loaded.

Fixture facts used: 13 clips; with the default thresholds more than four clips are accepted, so
the four examples are accepted clips (the first by file name) and no rejected video is shown;
geneface_zozo_radnerf speaks German.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from curate.filter import apply_filters
from curate.query import query
from curate.report import write_report
from extractors.registry import make_config
from settings.config import FilterConfig, Rule

SECTIONS = (
    "Summary",
    "Verdicts by reason",
    "Score distributions",
    "Emotion mix",
    "Languages",
    "Identities",
    "Review",
    "Blendshape channels",
    "Example clips",
)


def detect_rate_caption(page: str) -> str:
    found = re.search(r"<figcaption>(face_detect_rate:[^<]*)</figcaption>", page)
    assert found, "no histogram of face_detect_rate"
    return found.group(1)


@pytest.fixture(scope="module")
def judged_root(fixture_run, tmp_path_factory) -> Path:
    """A copy of the fixture run with a fresh default decision set on top (the shared root is left alone)."""
    root = tmp_path_factory.mktemp("report") / "root"
    shutil.copytree(fixture_run.root, root, ignore=shutil.ignore_patterns(".lock", "_staging"))
    apply_filters(root, make_config())
    return root


@pytest.fixture(scope="module")
def report(curate, judged_root) -> Path:
    done = curate("report", str(judged_root))
    assert done.returncode == 0, done.stderr
    path = judged_root / "report.html"
    assert done.stdout.strip() == str(path)
    assert path.is_file()
    return path


def verdicts_by_name(root: Path) -> dict[str, set[str]]:
    rows = query(
        root,
        "select regexp_extract(v.uri, '[^/]+$') name, d.verdict from current_decisions d"
        " join clips c using (clip_id) join videos v using (video_id)",
    ).to_pylist()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["name"], set()).add(r["verdict"])
    return out


def test_report_has_every_section_and_the_example_clips(report, judged_root) -> None:
    page = report.read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page, title
    verdicts = verdicts_by_name(judged_root)
    accepted = sorted(name for name, v in verdicts.items() if "accept" in v)
    accept_clips = query(judged_root, "select 1 from current_decisions where verdict = 'accept'").num_rows
    assert "<li>clips: 13</li>" in page and f"accept: {accept_clips}," in page
    assert len(accepted) > 4
    for name in accepted[:4]:
        assert f"<b>{name}</b>" in page, name  # the examples: accepted clips, by file name
    for name in (n for n, v in verdicts.items() if v == {"reject"}):
        assert name not in page, name  # iplap_129.mp4 (no audio), the no-speech and no-face videos
    assert "No annotations pulled yet" in page  # the review section of a root nobody reviewed
    assert "Frau Merkel" in page  # a transcript (geneface_zozo_radnerf speaks German)
    caption = detect_rate_caption(page)
    assert caption.startswith("face_detect_rate: share of frames with at least one face")  # schema doc
    assert "filter limit 0.9 ± 0.05 (" in caption  # the face_missing threshold drawn on its histogram
    people = query(judged_root, "select count(distinct identity_id) n from clips").to_pylist()[0]["n"]
    assert 5 <= people < 13  # the fixtures' people; twins and the NeRF copy of r3p_May_5s filed with theirs
    assert page.count('alt="middle frame of') == 4  # one frame per example
    assert page.count('alt="id-') == people  # a face per person
    # the voice check: the NeRF copy of r3p_May_5s speaks with another voice, so both May clips are listed
    assert re.search(
        r"Voice check: \d+ clip\(s\) whose person has another clip with a voice; 2 sound like", page
    )
    assert "<td>geneface_zozo_radnerf.mp4</td>" in page and "<td>r3p_May_5s.mp4</td>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from the network


def test_thresholds_come_from_the_config_and_out_is_honoured(judged_root, tmp_path) -> None:
    config = make_config(
        filter=FilterConfig(rules={"face_missing": Rule(column="face_detect_rate", min=0.5)})
    )
    path = write_report(judged_root, tmp_path / "sub" / "r.html", config)
    assert path == tmp_path / "sub" / "r.html"
    page = path.read_text(encoding="utf-8")
    assert "filter limit 0.5 ± 0 (" in detect_rate_caption(page)


def test_a_root_without_clips_exits_1_as_filter_does(curate, tmp_path) -> None:
    from manifests.store import DatasetRoot

    DatasetRoot(tmp_path).commit({})  # a root with a commit record and no table
    done = curate("report", str(tmp_path))
    assert done.returncode == 1 and curate("filter", str(tmp_path)).returncode == 1
    assert "no clips" in done.stderr and "curate run" in done.stderr
    assert not (tmp_path / "report.html").exists()


def test_the_page_renders_in_headless_chromium(report, tmp_path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [*argv, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    rendered = re.search(r'data-rendered="(\d+)/(\d+)"', dom)
    assert rendered, "the on-load script did not run"
    ok, total = map(int, rendered.groups())
    assert ok == total >= 5

    shot = tmp_path / "report.png"
    subprocess.run(
        [*argv, f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (4000, 1280)
    assert image.std() > 20  # not a blank page


def test_blendshape_plot_takes_a_channel_whose_mean_is_outside_its_band() -> None:
    """Real data crashed it: a channel at 0 in 96% of frames and 1 in the rest has its mean (0.04)
    above its 95th percentile (0)."""
    import duckdb
    import pyarrow as pa

    from curate.report import blendshape_stats

    frames = [[1.0 if (i < 4 and c == 0) else 0.5 for c in range(52)] for i in range(100)]
    for f in frames[4:]:
        f[0] = 0.0
    con = duckdb.connect()
    con.register("tracks", pa.table({"blendshapes": [frames]}))
    html = blendshape_stats(con)
    assert "data:image/png;base64," in html and "over 100 frames" in html


def test_chinese_transcripts_render_as_glyphs_not_boxes(tmp_path) -> None:
    """Two different Chinese characters, set as the report sets transcripts, must not draw the
    same picture: without a font that covers them both would be the same empty box (setup
    installs one: fonts-wqy-zenhei)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from curate.report import STYLE

    shots = []
    for char in ("中", "文"):
        page = tmp_path / f"{ord(char)}.html"
        page.write_text(
            f'<html><head><meta charset="utf-8"><style>{STYLE}</style></head><body><i style="font-size:96px">{char}</i></body></html>',
            encoding="utf-8",
        )
        shot = tmp_path / f"{ord(char)}.png"
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={shot}", "--window-size=300,300", page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        image = cv2.imread(str(shot), cv2.IMREAD_GRAYSCALE)
        assert image is not None and image.min() < 128, "something was drawn"
        shots.append(image)
    assert (shots[0] != shots[1]).mean() > 0.005, "both characters drew the same box: no CJK font"
