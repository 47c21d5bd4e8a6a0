"""The speaker-relative emotion cues of ``bench.emotion_speaker``: what moves and by how much."""

import numpy as np

from bench.emotion_speaker import speaker_relative
from extractors.emotion_training import LabelledClip


def clip(speaker: str, label: int, level: float) -> LabelledClip:
    probs = np.full(7, 0.1)
    probs[label] = 0.4
    return LabelledClip(f"{speaker}-{label}", f"{speaker}.mp4", speaker, label, probs, np.full(52, level))


def test_a_speakers_mean_moves_onto_the_reference_by_its_share():
    clips = [clip("a", 0, 0.3), clip("a", 3, 0.5), clip("a", 6, 0.4), clip("b", 4, 0.9)]
    ref = (np.zeros(7), np.full(52, 0.1))
    logs, medians = speaker_relative(clips, ref, shrink=2.0)
    share = 2 / (2 + 2.0)  # three clips: (n - 1) / (n - 1 + K)
    assert np.allclose(medians[:3].mean(axis=0), 0.4 - share * (0.4 - 0.1))
    # within a speaker the differences between clips are kept
    assert np.allclose(medians[1] - medians[0], 0.2)
    # a speaker with one clip is left as it is
    assert np.allclose(medians[3], 0.9)
    raw_logs, _ = speaker_relative(clips, ref, shrink=None)
    assert np.allclose(logs[3], raw_logs[3])
    assert not np.allclose(logs[0], raw_logs[0])


def test_no_shrink_leaves_the_cues_unchanged():
    clips = [clip("a", 0, 0.3), clip("a", 3, 0.5)]
    logs, medians = speaker_relative(clips, (np.zeros(7), np.zeros(52)), shrink=None)
    assert np.allclose(medians[:, 0], [0.3, 0.5])
    assert logs.shape == (2, 7)
