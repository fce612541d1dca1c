"""Answer metrics against hand-computed values and the SQuAD v1.1 evaluation definition."""

from __future__ import annotations

import pytest

from utilabel.evaluate.answers import (
    answer_in_passages,
    best_over_golds,
    exact_match,
    lcs_length,
    normalize_answer,
    rouge_l,
    token_f1,
)


@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower!", "eiffel tower"),        # article and punctuation dropped
    ("  A  cat,  an   apple ", "cat apple"),      # articles anywhere, spaces collapsed
    ("theatre", "theatre"),                       # 'the' only as a whole word
    ("U.S.A.", "usa"),                            # punctuation removed inside tokens (SQuAD does this)
    ("", ""),
])
def test_normalize_answer_follows_squad_v11(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match():
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0


def test_token_f1_hand_computed():
    # pred "denver broncos won" vs gold "denver broncos": same = 2, P = 2/3, R = 2/2
    # F1 = 2 * (2/3) * 1 / (2/3 + 1) = (4/3) / (5/3) = 0.8
    assert token_f1("Denver Broncos won", "the Denver Broncos") == pytest.approx(0.8)
    # repeated tokens count by multiplicity: pred "a a b" → "b" after articles; use other words:
    # pred "x x y" vs gold "x y y": common = min(2,1)+min(1,2) = 2, P = R = 2/3, F1 = 2/3
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)
    assert token_f1("nothing shared", "denver") == 0.0
    assert token_f1("", "denver") == 0.0


def test_max_over_gold_answers_like_squad():
    golds = ["Denver Broncos", "Broncos", "the Broncos team"]
    # EM hits "Broncos"; F1 best is 1.0 for the same gold
    assert best_over_golds(exact_match, "Broncos", golds) == 1.0
    # "Denver" vs golds: F1 = 2*(1)(1/2)/(1.5)=2/3, 0, 0 → 2/3
    assert best_over_golds(token_f1, "Denver", golds) == pytest.approx(2 / 3)
    assert best_over_golds(token_f1, "Denver", []) == 0.0


def test_lcs_and_rouge_l_hand_computed():
    assert lcs_length("a b c d e".split(), "a c e f".split()) == 3  # a c e
    # pred "police killed the gunman" → "police killed gunman" (3 tokens)
    # gold "the gunman was killed by police" → "gunman was killed by police" (5 tokens)
    # LCS: "killed" ... longest is 1? "police" then nothing after in gold; "gunman"→ none after in pred;
    # "killed" → "police"? pred order police,killed,gunman; gold gunman,was,killed,by,police:
    # subsequences common: (killed), (police), (gunman) — LCS = 1. P = 1/3, R = 1/5, F = 2/15/(8/15) = 0.25
    assert rouge_l("police killed the gunman", "the gunman was killed by police") == pytest.approx(0.25)
    # pred "the cat sat on the mat" → "cat sat on mat" (4); gold "the cat is on the mat" → "cat is on mat" (4)
    # LCS = "cat on mat" = 3, P = R = 3/4, F = 0.75
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(0.75)
    assert rouge_l("", "anything") == 0.0


def test_answer_in_passages_uses_whole_normalised_tokens():
    passages = ["The Denver Broncos defeated the Carolina Panthers.", "Something else."]
    assert answer_in_passages(passages, ["carolina panthers"]) == 1.0
    assert answer_in_passages(passages, ["Panther"]) == 0.0  # not a whole token
    assert answer_in_passages(passages, ["the"]) == 0.0       # normalises to empty: never counts
    assert answer_in_passages([], ["Denver"]) == 0.0
