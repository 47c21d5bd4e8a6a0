"""The search for faces beside those the whole-frame detector finds (``[face] extra_faces_every_s``,
issue 39): its schedule and following on made-up boxes, and on a composite made with ffmpeg at
test time, a wide shot's small face beside a close-up, which the real landmarker finds only so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import pytest

from extractors.base import ClipRef, Extraction
from extractors.face.extractor import FaceConfig, FaceExtractor
from extractors.face.regions import ExtraFaceSearch, around, same_face
from extractors.registry import make_config
from settings.config import Config

BIG = [0.6, 0.2, 0.9, 0.8]  # a close-up's face
SMALL = [0.25, 0.15, 0.31, 0.33]  # a wide shot's face beside it
SECONDS = 4
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac"]


def test_tiles_are_searched_on_the_first_frame_asked_then_every_so_many() -> None:
    search = ExtraFaceSearch(every_frames=45, share=1.0)
    assert [f for f in range(100) if search.tiles_due(f)] == [0, 45, 90]


def test_a_frame_one_tile_covers_is_not_searched() -> None:
    search = ExtraFaceSearch(every_frames=45, share=1.0)
    assert search.tiles(512, 512) == []  # square: the whole frame, which the landmarker saw
    assert len(search.tiles(1000, 360)) == 5  # 360-pixel squares overlapping by half
    assert len(ExtraFaceSearch(45, 0.5).tiles(512, 512)) == 9


def test_a_face_found_is_followed_until_lost_or_seen_by_the_whole_frame() -> None:
    search = ExtraFaceSearch(every_frames=45, share=1.0, lost_after=30)
    assert search.follow(0, [BIG], 1000, 360) == []
    search.seen(0, [SMALL])
    assert search.follow(1, [BIG], 1000, 360) == [(around(SMALL, 1000, 360), SMALL)]
    assert search.follow(2, [BIG, SMALL], 1000, 360) == []  # the whole-frame detector has it
    assert len(search.follow(3, [BIG], 1000, 360)) == 1  # and lost it again: followed on
    assert search.follow(33, [BIG], 1000, 360) == []  # unseen since frame 2: lost


def test_same_face_takes_a_box_cut_by_a_tile_for_the_face() -> None:
    assert same_face(BIG, [0.62, 0.25, 0.7, 0.4])  # inside the close-up's box
    assert not same_face(BIG, SMALL)


@pytest.fixture(scope="module")
def wide_beside_close(tmp_path_factory: pytest.TempPathFactory, pool: Path, video) -> Path:  # type: ignore[no-untyped-def]
    """skyreels_driving_5 (a wide shot, 1280x720: the face about a fifth of the height) and
    r3p_May_5s (a close-up) side by side, both 360 px high (1000x360), 4 s, the wide shot's sound."""
    if not shutil.which("ffmpeg"):
        pytest.skip("no ffmpeg on PATH (scripts/setup.sh installs it)")
    out = tmp_path_factory.mktemp("extra_faces") / "wide_beside_close.mp4"
    t = ["-t", str(SECONDS)]
    done = subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", *t, "-i", str(pool / "skyreels_driving_5.mp4"),
         *t, "-i", str(video("r3p_May_5s.mp4")),
         "-filter_complex", "[0:v]scale=640:360,setsar=1,fps=25[a];[1:v]scale=360:360,setsar=1,fps=25[b];"
         "[a][b]hstack", "-map", "0:a", *ENCODE, str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def faces(config: Config, path: Path) -> Extraction:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        duration = float(stream.duration * stream.time_base)
    fps = config.section("face", FaceConfig).fps
    extractor = FaceExtractor(config)
    extractor.setup()
    try:
        return extractor.extract(ClipRef(path, "test", path.stem, 0.0, duration, fps, True), {})
    finally:
        extractor.close()


def centre_x(box: list[float]) -> float:
    return (box[0] + box[2]) / 2


@pytest.mark.slow
def test_a_small_face_beside_a_close_up_becomes_a_track_and_the_speaker(wide_beside_close: Path) -> None:
    """The whole-frame detector finds only the close-up (right); the tile search finds the wide
    shot's face (left, the one speaking) on the first frame, and following it makes it a lasting
    track, which sync then chooses as the subject."""
    off = faces(make_config(**{"face": {"extra_faces_every_s": 0}}), wide_beside_close)
    assert off.clip["face_tracks"] == 1 and off.clip["face_count_max"] == 1
    assert all(centre_x(b) > 0.64 for b in off.track["face_box"] if b is not None)

    out = faces(make_config(), wide_beside_close)
    n = out.clip["face_frames"]
    assert out.clip["face_tracks"] == 2 and out.clip["face_multi_rate"] >= 0.95
    assert out.clip["face_subject_by"].startswith("sync")
    small = [b for b in out.track["face_box"] if b is not None]
    assert len(small) >= 0.95 * n  # followed in (almost) every frame, not only the searched ones
    assert all(centre_x(b) < 0.64 for b in small)  # the wide shot, left
    assert 0.15 <= sorted(b[3] - b[1] for b in small)[len(small) // 2] <= 0.3  # face a fifth of the height
    (close,) = out.track["face_other_boxes"]
    assert all(centre_x(b) > 0.64 for b in close if b is not None)
