"""Face tracks and the choice of the subject, on boxes and scores made up to show each case (the
real landmarker and sync model on two faces: tests/extractors/test_small_faces.py)."""

from __future__ import annotations

from collections.abc import Sequence

from extractors.face.speaker import choose_subject, lasting
from extractors.face.tracks import REJOIN_FRAMES, FaceTracker, iou

LEFT = [0.1, 0.2, 0.3, 0.5]
RIGHT = [0.6, 0.2, 0.8, 0.5]


def shifted(box: Sequence[float], dx: float) -> list[float]:
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def test_iou() -> None:
    assert iou(LEFT, LEFT) == 1.0 and iou(LEFT, RIGHT) == 0.0
    assert abs(iou([0, 0, 2, 1], [1, 0, 3, 1]) - 1 / 3) < 1e-9


def test_two_faces_keep_their_tracks_whatever_order_they_come_in() -> None:
    tracker = FaceTracker()
    assert tracker.update(0, [LEFT, RIGHT]) == [0, 1]
    assert tracker.update(1, [shifted(RIGHT, 0.01), shifted(LEFT, 0.01)]) == [1, 0]
    assert tracker.update(2, [shifted(LEFT, 0.02)]) == [0]
    assert tracker.count == 2


def test_a_face_back_after_a_gap_rejoins_its_track_and_a_new_place_is_a_new_track() -> None:
    tracker = FaceTracker()
    tracker.update(0, [LEFT])
    assert tracker.update(20, [shifted(LEFT, 0.05)]) == [0]  # moved a little while unseen
    assert tracker.update(21 + REJOIN_FRAMES, [LEFT]) == [1]  # gone too long
    assert tracker.update(22 + REJOIN_FRAMES, [RIGHT]) == [2]  # elsewhere: someone else


def values(box: Sequence[float], jaw: float = 0.0) -> tuple[list[float], list[float], list[float]]:
    return [jaw] * 52, [0.0] * 6, list(box)


def test_one_face_at_a_time_is_the_subject_frame_by_frame_without_scoring() -> None:
    tracks = {0: [values(LEFT)] * 40 + [None] * 40, 1: [None] * 40 + [values(RIGHT)] * 40}

    def never(shapes: Sequence[Sequence[float] | None]) -> float | None:
        raise AssertionError("faces that never share a frame need no sync")

    subject = choose_subject(tracks, 80, 30, never, 1.8, 1.0)
    assert subject.by == "largest face" and subject.chosen
    assert subject.track_ids == [0] * 40 + [1] * 40
    assert lasting(tracks, 30) == [0, 1]


def test_of_two_faces_at_once_the_one_in_sync_with_a_margin_is_the_subject() -> None:
    tracks = {0: [values(LEFT, 0.1)] * 60, 1: [values(RIGHT, 0.2)] * 60}

    def scorer(z_left: float, z_right: float):  # type: ignore[no-untyped-def]
        return lambda shapes: z_left if shapes[0][0] == 0.1 else z_right

    chosen = choose_subject(tracks, 60, 30, scorer(0.3, 4.0), 1.8, 1.0)
    assert (chosen.by, chosen.track, chosen.chosen) == ("sync", 1, True)
    assert chosen.track_ids == [1] * 60 and chosen.frames[0] == values(RIGHT, 0.2)
    alike = choose_subject(tracks, 60, 30, scorer(3.6, 4.0), 1.8, 1.0)
    assert alike.by == "undecided" and not alike.chosen and "two tracks alike" in alike.note
    silent = choose_subject(tracks, 60, 30, scorer(0.3, 1.2), 1.8, 1.0)
    assert silent.by == "undecided" and "no track in sync" in silent.note
    assert choose_subject(tracks, 60, 30, None, 1.8, 1.0).note.startswith("no audio")


def test_a_short_second_face_does_not_call_for_a_choice() -> None:
    tracks = {0: [values(LEFT)] * 60, 1: [values(RIGHT)] * 10 + [None] * 50}
    subject = choose_subject(tracks, 60, 30, None, 1.8, 1.0)
    assert subject.chosen and subject.by == "largest face" and subject.track == 0
