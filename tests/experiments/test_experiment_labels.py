"""Label construction of the grid: human, judgments, noise injection and human/LLM mixing."""

from __future__ import annotations

import json

import pytest

from utilabel.errors import ConfigError
from utilabel.experiments import labels as L


def test_human_labels_keep_grades_as_binary_weights():
    qrels = {"q1": {"d1": 2, "d2": 1, "d3": 0}, "q2": {"d9": 1}}
    assert L.human_labels(qrels, relevance_level=2) == {"q1": {"d1": 1.0, "d2": 0.0, "d3": 0.0}, "q2": {"d9": 0.0}}
    assert L.human_labels(qrels, 1, query_ids=["q2", "zz"]) == {"q2": {"d9": 1.0}}


def test_judgment_labels_average_votes_and_skip_missing_fields():
    recs = [
        {"query_id": "q", "doc_id": "a", "method": "utilsel", "relevance": 1, "utility": 1.0},
        {"query_id": "q", "doc_id": "a", "method": "utilsel", "relevance": 1, "utility": 0.0},  # second vote
        {"query_id": "q", "doc_id": "b", "method": "utilsel", "relevance": 0, "utility": None},  # not in utility step
        {"query_id": "q", "doc_id": "c", "method": "relsel", "relevance": 1, "utility": None},
    ]
    assert L.judgment_labels(recs, "utility") == {"q": {"a": 0.5}}
    assert L.judgment_labels(recs, "relevance", method="utilsel") == {"q": {"a": 1.0, "b": 0.0}}
    with pytest.raises(ConfigError, match=r"judgment utility must be in \[0, 1\]; got 3.0 for \(q, a\)"):
        L.judgment_labels([{"query_id": "q", "doc_id": "a", "utility": 3}])


def test_false_positive_counts_follow_the_rate():
    # one true positive per query; rate 0.5 → expected false = 0.5·1/(1-0.5) = 1 exactly (no rounding)
    labels = {f"q{i}": {f"pos{i}": 1.0} for i in range(20)}
    cands = {f"q{i}": [f"pos{i}"] + [f"c{i}_{j}" for j in range(10)] for i in range(20)}
    noisy = L.add_false_positives(labels, cands, 0.5, seed=1)
    for q, docs in noisy.items():
        assert docs[f"pos{q[1:]}"] == 1.0
        false = [d for d in docs if d.startswith("c")]
        assert len(false) == 1 and false[0] in cands[q]
    # rate 0.75 → 3 false per query; rate 0 → unchanged; deterministic by seed
    assert all(len(v) == 4 for v in L.add_false_positives(labels, cands, 0.75, seed=1).values())
    assert L.add_false_positives(labels, cands, 0.0, seed=1) == labels
    assert L.add_false_positives(labels, cands, 0.2, 3) == L.add_false_positives(labels, cands, 0.2, 3)
    # 0.2 → expected 0.25 per query: stochastic rounding gives 0 or 1, about a quarter of 20 queries
    n = sum(len(v) - 1 for v in L.add_false_positives(labels, cands, 0.2, seed=5).values())
    assert 1 <= n <= 10
    with pytest.raises(ConfigError, match=r"noise rate must be in \[0, 1\)"):
        L.add_false_positives(labels, cands, 1.0, 0)


def test_false_positives_never_reuse_judged_relevant_docs():
    labels = {"q": {"a": 1.0, "b": 1.0}}
    cands = {"q": ["a", "b", "x"]}  # only one eligible candidate
    assert L.add_false_positives(labels, cands, 0.9, seed=0) == {"q": {"a": 1.0, "b": 1.0, "x": 1.0}}


def test_mix_labels_ratio_endpoints_and_fraction():
    human = {f"q{i}": {"h": 1.0} for i in range(10)}
    llm = {f"q{i}": {"l": 1.0} for i in range(10)}
    assert L.mix_labels(human, llm, 0.0, 0) == (llm, [])
    mixed, chosen = L.mix_labels(human, llm, 1.0, 0)
    assert mixed == human and len(chosen) == 10
    mixed, chosen = L.mix_labels(human, llm, 0.2, 0)
    assert len(chosen) == 2  # round(0.2 · 10)
    assert sum(1 for v in mixed.values() if "h" in v) == 2


def test_write_labels_is_content_addressed(tmp_path):
    a = L.write_labels(tmp_path, {"q": {"d": 1.0}}, "human")
    b = L.write_labels(tmp_path, {"q": {"d": 1.0}}, "human")
    c = L.write_labels(tmp_path, {"q": {"d": 0.5}}, "human")
    assert a == b != c
    assert [json.loads(x) for x in a.read_text().splitlines()] == [
        {"doc_id": "d", "method": "human", "query_id": "q", "utility": 1.0}]
    assert L.label_stats({"q": {"d": 1.0, "e": 0.0}, "r": {"f": 0.0}}) == {
        "queries": 2, "queries_with_positive": 1, "mean_positives": 0.5}


def test_binarize_thresholds_soft_labels():
    soft = {"q1": {"a": 0.5, "b": 0.49, "c": 1.0}, "q2": {"d": 0.0}}
    assert L.binarize(soft, 0.5) == {"q1": {"a": 1.0, "b": 0.0, "c": 1.0}, "q2": {"d": 0.0}}
