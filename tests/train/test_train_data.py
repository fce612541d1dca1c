"""Label sources, human/LLM mixing strategies and group sampling (real SciFact qrels where it matters)."""

from __future__ import annotations

import json

import pytest

from utilabel.errors import ConfigError, DataFormatError
from utilabel.records import Judgment
from utilabel.train.data import (
    GroupSampler,
    human_labels,
    llm_labels,
    plan_labels,
    read_judgments,
    uncertainty,
)

HUMAN = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"c": 1.0}, "q4": {"d": 1.0}}
LLM = {
    "q1": {"a": 1.0, "x": 0.0},            # confident, mixed labels
    "q2": {"b": 0.5, "y": 0.0},            # permutations disagree on b → soft label
    "q3": {"z": 0.0, "w": 0.0},            # no positive
    "q4": {"d": 1.0, "v": 0.0},            # confident
}


def test_llm_labels_average_permutations(tmp_path):
    path = tmp_path / "j.jsonl"
    recs = [Judgment("q1", "d1", "utility", utility=1.0), Judgment("q1", "d1", "utility", utility=0.0),
            Judgment("q1", "d2", "utility", relevance=1), Judgment("q1", "d3", "other", utility=1.0)]
    path.write_text("".join(json.dumps({k: getattr(r, k) for k in r.__slots__}) + "\n" for r in recs))
    labels = llm_labels(read_judgments(path), method="utility")
    assert labels == {"q1": {"d1": 0.5, "d2": 1.0}}  # (1 + 0) / 2 = 0.5; relevance used when utility is None


def test_read_judgments_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "q1"}\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:1: judgment needs 'query_id' and 'doc_id'"):
        read_judgments(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_judgments(tmp_path / "missing.jsonl")


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


def test_sampler_rand1_rotation_and_negatives():
    plan = plan_labels({"q": {"p1": 1.0, "p2": 1.0, "p3": 1.0}}, None)
    cands = {"q": ["p1", "n1", "p2", "n2", "n3"]}
    corpus = ["p1", "p2", "p3", "n1", "n2", "n3", "r1", "r2", "r3", "r4"]
    s = GroupSampler(plan, cands, corpus, group_size=5, single_positive=True, seed=1)
    firsts = [s.group("q", e).doc_ids[0] for e in range(3)]
    assert sorted(firsts) == ["p1", "p2", "p3"]  # each positive once over 3 epochs
    for e in range(3):
        g = s.group("q", e)
        assert g.weights == [1.0, 0.0, 0.0, 0.0, 0.0]
        assert set(g.doc_ids[1:4]) == {"n1", "n2", "n3"}  # hard negatives exclude every positive
        assert g.doc_ids[4].startswith("r")  # random fill, never a positive
        assert g == s.group("q", e)  # deterministic
    multi = GroupSampler(plan, cands, corpus, group_size=5, max_positives=2, seed=1).group("q", 0)
    assert sum(w > 0 for w in multi.weights) == 2 and len(multi.doc_ids) == 5


def test_real_scifact_groups(mirror):
    from utilabel.data.registry import load_dataset
    from utilabel.retrieve.bm25 import bm25_candidates

    ds = load_dataset("scifact")
    human = human_labels(ds, "train")
    assert len(human) == 809
    cands = {g.query_id: [c.doc_id for c in g.candidates] for g in bm25_candidates(ds, "train", k=20, limit=50)}
    s = GroupSampler(plan_labels(human, None), cands, list(ds.corpus), group_size=8, seed=0, query_ids=list(cands))
    groups = s.epoch_groups(0)
    assert len(groups) == 50
    for g in groups:
        pos = {d for d, w in human[g.query_id].items() if w > 0}
        assert len(g.doc_ids) == 8 and len(set(g.doc_ids)) == 8
        assert {d for d, w in zip(g.doc_ids, g.weights) if w > 0} <= pos
        assert not (set(d for d, w in zip(g.doc_ids, g.weights) if w == 0) & pos)
