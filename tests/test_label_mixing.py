"""Mixing human and LLM labels (:mod:`utilabel.labels.mixing`): strategies, the uncertain order, seeding."""

from __future__ import annotations

import pytest

from utilabel.errors import ConfigError
from utilabel.labels.mixing import plan_labels, uncertain_order, uncertainty
from utilabel.seeding import rng_for

HUMAN = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"c": 1.0}, "q4": {"d": 1.0}}
LLM = {
    "q1": {"a": 1.0, "x": 0.0},            # confident, mixed labels
    "q2": {"b": 0.5, "y": 0.0},            # permutations disagree on b → soft label
    "q3": {"z": 0.0, "w": 0.0},            # no positive
    "q4": {"d": 1.0, "v": 0.0},            # confident
}


def test_uncertainty_order():
    assert uncertainty(LLM["q2"]) == (2, 0.5)  # one of two labels soft
    assert uncertainty(LLM["q3"]) == (1, 0.0)  # no positive
    assert uncertainty({"a": 1.0}) == (1, 0.0)  # all positive
    assert uncertainty(LLM["q1"]) == (0, 0.0)


def test_uncertain_strategy_picks_least_certain_queries():
    plan = plan_labels(HUMAN, LLM, human_ratio=0.5, strategy="uncertain", seed=0)
    assert plan.human_queries == ["q2", "q3"]  # round(0.5 * 4) = 2: the soft one, then the no-positive one
    labels = plan.labels(0)
    assert labels["q2"] == {"b": 1.0} and labels["q3"] == {"c": 1.0} and labels["q1"] == LLM["q1"]


def test_replace_union_curriculum():
    rep = plan_labels(HUMAN, LLM, human_ratio=0.25, strategy="replace", seed=3)
    assert len(rep.human_queries) == 1
    q = rep.human_queries[0]
    assert rep.labels(0)[q] == HUMAN[q]
    uni = plan_labels(HUMAN, LLM, human_ratio=1.0, strategy="union", seed=3)
    assert uni.labels(0)["q3"] == {"z": 0.0, "w": 0.0, "c": 1.0}
    cur = plan_labels(HUMAN, LLM, human_ratio=0.5, strategy="curriculum", seed=3, epochs=4)
    assert cur.labels(0) == LLM and cur.labels(1) == LLM  # ceil(0.5 * 4) = 2 LLM epochs
    assert set(cur.labels(2)) == set(cur.human_queries) and len(cur.human_queries) == 2
    assert plan_labels(HUMAN, LLM, 0.5, "replace", seed=3).human_queries == plan_labels(HUMAN, LLM, 0.5, "replace", seed=3).human_queries
    with pytest.raises(ConfigError, match="unknown mix strategy 'x'; valid: replace, union, curriculum, uncertain"):
        plan_labels(HUMAN, LLM, 0.5, "x")


def test_margins_break_ties_of_equal_uncertainty_smallest_first():
    llm = {"a": {"x": 1.0, "y": 0.0}, "b": {"x": 1.0, "y": 0.0}, "c": {"x": 1.0, "y": 0.0}}
    assert uncertain_order(llm, ["a", "b", "c"], margins={"a": 2.0, "b": -1.0, "c": 0.5}) == ["b", "c", "a"]


def test_rng_for_is_stable_across_processes():
    """The draw depends only on the parts (a sha256 of them), never on PYTHONHASHSEED or earlier draws."""
    assert rng_for(0, "human-choice").random() == rng_for(0, "human-choice").random()
    assert rng_for(0, "human-choice").random() != rng_for(1, "human-choice").random()
    assert round(rng_for(42, "order", 0).random(), 12) == round(rng_for("42", "order", "0").random(), 12)
