"""The speaker-relative shift of extractors.emotion.speaker: what moves and by how much."""

import numpy as np

from extractors.emotion.speaker import speaker_of, speaker_relative


def test_a_speakers_mean_moves_onto_the_reference_by_its_share():
    logs = np.log(np.full((4, 7), 1 / 7))
    logs[0, 0] += 1.0
    medians = np.array([np.full(52, level) for level in (0.3, 0.5, 0.4, 0.9)])
    reference = (np.zeros(7), np.full(52, 0.1))
    moved_logs, moved = speaker_relative(logs, medians, ["a", "a", "a", "b"], reference, shrink=2.0)
    share = 2 / (2 + 2.0)  # three clips: (n - 1) / (n - 1 + shrink)
    assert np.allclose(moved[:3].mean(axis=0), 0.4 - share * (0.4 - 0.1))
    assert np.allclose(moved[1] - moved[0], 0.2)  # within a speaker the differences stay
    assert np.allclose(moved[3], 0.9)  # a speaker with one clip keeps its cues
    assert np.allclose(moved_logs[3], logs[3])
    assert np.allclose(moved_logs[0] - moved_logs[1], logs[0] - logs[1])
    assert not np.allclose(moved_logs[0], logs[0])


def test_clips_without_a_speaker_are_not_grouped():
    medians = np.array([np.full(52, 0.3), np.full(52, 0.5)])
    _, moved = speaker_relative(np.zeros((2, 7)), medians, [None, None], (np.zeros(7), np.zeros(52)), 1.0)
    assert np.allclose(moved, medians)


def test_speaker_from_tag_then_identity_then_corpus_name():
    assert speaker_of("/x/1001_DFA_ANG_XX.mp4", {"speaker_id": "alice"}, "id-0123456789ab") == "alice"
    assert speaker_of("/x/1001_DFA_ANG_XX.mp4", {}, "id-0123456789ab") == "id-0123456789ab"
    assert speaker_of("/x/1001_DFA_ANG_XX.mp4", {"speaker_id": "alice"}) == "alice"
    assert speaker_of("/x/1001_DFA_ANG_XX.mp4", None) == "crema_1001"
    assert speaker_of("/x/03-01-05-01-02-01-12.mp4", {}) == "ravdess_12"
    assert speaker_of("/x/vlog_part3.mp4", {}) is None
