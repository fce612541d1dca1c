"""Pure parsers: each failure kind, lenient forms, thinking traces."""

from __future__ import annotations

import pytest

from utilabel.annotate.parsing import (
    parse_answer,
    parse_answer_selection,
    parse_ranking,
    parse_selection,
    strip_thinking,
)


@pytest.mark.parametrize("text,ids", [
    ("My selection:[[2],[5]]", (2, 5)),
    ("My selection: [[5], [2]].", (5, 2)),
    ("my selection:[2, 5]", (2, 5)),
    ("Sure.\nMy selection: [2], [5]\nThese are relevant.", (2, 5)),
    ("[[3]]", (3,)),
    ("My selection: 1, 4", (1, 4)),
])
def test_selection_lenient_forms(text, ids):
    r = parse_selection(text, 5)
    assert r.ok and r.value == ids


@pytest.mark.parametrize("text,kind", [
    ("I think passage two is good.", "no_selection"),
    ("My selection: the second one", "no_selection"),
    ("My selection:[[2],...]", "no_selection"),  # the format template echoed, not an answer
    ("My selection:[[2],[9]]", "out_of_range"),
    ("My selection:[[0]]", "out_of_range"),
    ("My selection:[[2],[2]]", "duplicate"),
    ("My selection:[]", "empty"),
    ("My selection: none", "empty"),
    ("", "no_selection"),
])
def test_selection_failure_kinds(text, kind):
    r = parse_selection(text, 5)
    assert not r.ok and r.failure == kind and r.value is None


def test_empty_selection_can_be_allowed():
    r = parse_selection("My selection:[]", 5, allow_empty=True)
    assert r.ok and r.value == ()


def test_thinking_is_stripped_before_parsing():
    text = "<think>maybe My selection:[[4]] or [[3]]</think>\nMy selection:[[1]]"
    assert strip_thinking(text) == "My selection:[[1]]"
    assert parse_selection(text, 5).value == (1,)
    # an unclosed think block hides everything after it: nothing to parse
    assert parse_selection("<think>My selection:[[1]]", 5).failure == "no_selection"


def test_ranking_full_partial_and_failures():
    assert parse_ranking("[2] > [3] > [1]", 3).value == (2, 3, 1)
    # left-out passages are appended in presented order (not a failure)
    r = parse_ranking("[3] > [1]", 4)
    assert r.ok and r.value == (3, 1, 2, 4)
    assert parse_ranking("no idea", 3).failure == "no_selection"
    assert parse_ranking("[2] > [7]", 3).failure == "out_of_range"
    assert parse_ranking("[2] > [2] > [1]", 3).failure == "duplicate"


def test_answer_and_joint_answer_selection():
    assert parse_answer("Answer:  It is   blue.").value == "It is blue."
    assert parse_answer("<think>x</think>   ").failure == "empty"
    r = parse_answer_selection("Answer: Blue.\nMy selection:[[2]]", 3)
    assert r.ok and r.value == ("Blue.", (2,))
    assert parse_answer_selection("Answer: Blue.", 3).failure == "no_selection"
    assert parse_answer_selection("My selection:[[2]]", 3).failure == "empty"
    assert parse_answer_selection("Answer: Blue.\nMy selection:[[4]]", 3).failure == "out_of_range"
