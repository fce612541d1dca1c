"""Label rules, judgment → label conversion and calibration, on hand-computed score tables."""

import math

import pytest

from utilabel.errors import ConfigError
from utilabel.labels import (
    Agreement,
    LabelRule,
    calibrate,
    judgment_labels,
    parse_rule,
    parse_rule_template,
    ranked_values,
    rule_agreement,
)
from utilabel.records import Judgment


def J(q, d, u, score=None, rank=None, rel=None):
    return Judgment(q, d, "pointwise", relevance=rel, utility=u, score=score, rank=rank)


# query a: values 0.9, 0.6, 0.4, 0.1 ; query b: 0.3, 0.2, 0.2 (ties broken by score) ; query c: all equal
TABLE = [
    J("a", "a3", 0.4), J("a", "a1", 0.9), J("a", "a2", 0.6), J("a", "a4", 0.1),
    J("b", "b1", 0.2, score=-1.0), J("b", "b2", 0.3), J("b", "b3", 0.2, score=0.5),
    J("c", "c1", 0.7), J("c", "c2", 0.7),
]


def test_ranked_values_order_and_ties():
    r = ranked_values(TABLE)
    assert [d for d, _ in r["a"]] == ["a1", "a2", "a3", "a4"]
    assert [d for d, _ in r["b"]] == ["b2", "b3", "b1"]  # 0.2 tie: score 0.5 before -1.0
    assert [d for d, _ in r["c"]] == ["c1", "c2"]  # full tie: written order


@pytest.mark.parametrize("spec, expected", [
    ("threshold:0.5", {"a": {"a1", "a2"}, "b": set(), "c": {"c1", "c2"}}),
    ("top1", {"a": {"a1"}, "b": {"b2"}, "c": set()}),  # all-equal query: top1 chooses nothing
    ("top2", {"a": {"a1", "a2"}, "b": {"b2", "b3"}, "c": set()}),
    ("top1+threshold:0.5", {"a": {"a1", "a2"}, "b": {"b2"}, "c": {"c1", "c2"}}),
    ("top1+threshold:0.65", {"a": {"a1"}, "b": {"b2"}, "c": {"c1", "c2"}}),
    ("calibrated:0.35", {"a": {"a1", "a2", "a3"}, "b": set(), "c": {"c1", "c2"}}),
])
def test_rules_hand_computed(spec, expected):
    labels = judgment_labels(TABLE, spec)
    got = {q: {d for d, w in docs.items() if w > 0} for q, docs in labels.items()}
    assert got == expected
    assert set(labels["a"]) == {"a1", "a2", "a3", "a4"}  # negatives kept with weight 0


def test_soft_weights_keep_values():
    labels = judgment_labels(TABLE, "top1+threshold:0.5", weights="soft")
    assert labels["a"] == {"a1": 0.9, "a2": 0.6, "a3": 0.0, "a4": 0.0}


def test_votes_of_one_pair_average():
    js = [J("q", "d1", 1.0), J("q", "d1", 0.0), J("q", "d2", 1.0), J("q", "d2", 1.0)]
    assert ranked_values(js)["q"] == [("d2", 1.0), ("d1", 0.5)]


def test_spec_round_trip_and_errors():
    for spec in ("top1", "top3", "threshold:0.5", "top1+threshold:0.25", "calibrated:0.42", "top2+calibrated:0.1"):
        assert parse_rule(spec).spec == spec
    assert parse_rule("top1+threshold:0.5") == LabelRule(1, 0.5)
    for bad in ("", "top", "topx", "threshold", "threshold:abc", "threshold:0.5+top1", "top1threshold:0.5",
                "threshold:nan", "bm25"):
        with pytest.raises(ConfigError, match="label rule"):
            parse_rule(bad)
    assert parse_rule_template("calibrated") == (None, 0)
    assert parse_rule_template("top1+calibrated") == (None, 1)
    assert parse_rule_template("top2") == (LabelRule(2), 2)


def test_out_of_range_value_rejected():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        judgment_labels([J("q", "d", math.nan)], "top1")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        judgment_labels([J("q", "d", 1.5)], "top1")


def test_agreement_counts_and_kappa():
    # tp=2 fp=1 fn=1 tn=4 → p=r=F1=2/3; po=6/8, pe=(3*3+5*5)/64=34/64, kappa=(48-34)/(64-34)=14/30
    a = Agreement(tp=2, fp=1, fn=1, tn=4)
    assert a.f1 == pytest.approx(2 / 3)
    assert a.kappa == pytest.approx(14 / 30)


def test_calibration_picks_hand_computed_threshold():
    # values: q1 d1 .9 (rel) d2 .7 d3 .2 ; q2 e1 .6 (rel) e2 .5 (rel) e3 .1
    ranked = {"q1": [("d1", 0.9), ("d2", 0.7), ("d3", 0.2)], "q2": [("e1", 0.6), ("e2", 0.5), ("e3", 0.1)]}
    human = {"q1": {"d1"}, "q2": {"e1", "e2"}}
    # F1 per threshold: .9 → 1/3·... tp1 fp0 fn2 → 0.5 ; .7 → tp1 fp1 fn2 → 0.4 ; .6 → tp2 fp1 fn1 → 0.667
    # .5 → tp3 fp1 fn0 → 0.857 ; .2 → tp3 fp2 → 0.75 ; .1 → tp3 fp3 → 0.667  ⇒ best 0.5
    rule, a = calibrate(ranked, human, objective="f1")
    assert rule == LabelRule(0, 0.5, calibrated=True) and rule.spec == "calibrated:0.5"
    assert a.f1 == pytest.approx(6 / 7)
    assert rule_agreement(ranked, human, rule).tp == 3
    with pytest.raises(ConfigError, match="objective"):
        calibrate(ranked, human, objective="auc")
    with pytest.raises(ConfigError, match="human labels"):
        calibrate(ranked, {"other": {"x"}})
