"""How many more reviews would move a limit, on made-up reviewed values (no server)."""

from __future__ import annotations

from review.filter_agreement import Holding, Proposal, _propose
from settings.config import Rule

RULE = Rule(column="speech_ratio", min=0.5)


def test_a_limit_every_review_agrees_with_is_not_expected_to_move() -> None:
    (found,) = _propose("little_speech", RULE, [0.1, 0.2, 0.8, 0.9], [True, True, False, False])
    assert found == Holding("little_speech", "min", lead=1, disagree_share=0.0, reviews_to_move=None)


def test_a_limit_with_a_disagreeing_review_says_how_many_more_would_move_it() -> None:
    values = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9]
    rejects = [True, True, True, False, True, False, False]  # 0.7 rejected though it passes
    (found,) = _propose("little_speech", RULE, values, rejects)
    # min 0.75 agrees with 6 of 7 too (it loses 0.6): no lead; one review in 7 disagrees
    assert found == Holding("little_speech", "min", lead=0, disagree_share=1 / 7, reviews_to_move=7)


def test_a_better_limit_is_proposed() -> None:
    values = [0.1, 0.2, 0.6, 0.62, 0.8, 0.9]
    rejects = [True, True, True, True, False, False]
    (found,) = _propose("little_speech", RULE, values, rejects)
    assert isinstance(found, Proposal) and found.proposed == 0.71 and found.agree_proposed == 6
