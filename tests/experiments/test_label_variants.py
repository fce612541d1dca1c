"""Label construction of the grid: a source's judgment field, noise injection, label files."""

from __future__ import annotations

import json

import pytest

from utilabel.errors import ConfigError
from utilabel.experiments import label_variants as variants
from utilabel.labels import judgment_labels
from utilabel.records import Judgment


def test_a_sources_field_averages_votes_and_skips_missing_values():
    """A label source reads one judgment field: ``utility`` (a failed utility step leaves no value)
    or ``relevance`` (the relevance-selection step of the same utilsel run)."""
    js = [Judgment("q", "a", "utilsel", relevance=1, utility=1.0),
          Judgment("q", "a", "utilsel", relevance=1, utility=0.0),  # second vote
          Judgment("q", "b", "utilsel", relevance=0, utility=None),  # not in the utility step
          Judgment("q", "c", "relsel", relevance=1, utility=None)]
    assert judgment_labels(js, "threshold:0.5", "soft", field="utility") == {"q": {"a": 0.5}}  # (1 + 0) / 2
    utilsel = [j for j in js if j.method == "utilsel"]
    assert judgment_labels(utilsel, "threshold:0.5", field="relevance") == {"q": {"a": 1.0, "b": 0.0}}
    with pytest.raises(ConfigError, match="label field must be one of utility, relevance"):
        judgment_labels(js, "top1", field="score")


def test_false_positive_counts_follow_the_rate():
    # one true positive per query; rate 0.5 → expected false = 0.5·1/(1-0.5) = 1 exactly (no rounding)
    labels = {f"q{i}": {f"pos{i}": 1.0} for i in range(20)}
    cands = {f"q{i}": [f"pos{i}"] + [f"c{i}_{j}" for j in range(10)] for i in range(20)}
    noisy = variants.add_false_positives(labels, cands, 0.5, seed=1)
    for q, docs in noisy.items():
        assert docs[f"pos{q[1:]}"] == 1.0
        false = [d for d in docs if d.startswith("c")]
        assert len(false) == 1 and false[0] in cands[q]
    # rate 0.75 → 3 false per query; rate 0 → unchanged; deterministic by seed
    assert all(len(v) == 4 for v in variants.add_false_positives(labels, cands, 0.75, seed=1).values())
    assert variants.add_false_positives(labels, cands, 0.0, seed=1) == labels
    assert variants.add_false_positives(labels, cands, 0.2, 3) == variants.add_false_positives(labels, cands, 0.2, 3)
    # 0.2 → expected 0.25 per query: stochastic rounding gives 0 or 1, about a quarter of 20 queries
    n = sum(len(v) - 1 for v in variants.add_false_positives(labels, cands, 0.2, seed=5).values())
    assert 1 <= n <= 10
    with pytest.raises(ConfigError, match=r"noise rate must be in \[0, 1\)"):
        variants.add_false_positives(labels, cands, 1.0, 0)


def test_false_positives_never_reuse_judged_relevant_docs():
    labels = {"q": {"a": 1.0, "b": 1.0}}
    cands = {"q": ["a", "b", "x"]}  # only one eligible candidate
    assert variants.add_false_positives(labels, cands, 0.9, seed=0) == {"q": {"a": 1.0, "b": 1.0, "x": 1.0}}


def test_write_labels_is_content_addressed(tmp_path):
    a = variants.write_labels(tmp_path, {"q": {"d": 1.0}}, "human")
    b = variants.write_labels(tmp_path, {"q": {"d": 1.0}}, "human")
    c = variants.write_labels(tmp_path, {"q": {"d": 0.5}}, "human")
    assert a == b != c
    assert [json.loads(x) for x in a.read_text().splitlines()] == [
        {"doc_id": "d", "method": "human", "query_id": "q", "utility": 1.0}]
    assert variants.label_stats({"q": {"d": 1.0, "e": 0.0}, "r": {"f": 0.0}}) == {
        "queries": 2, "queries_with_positive": 1, "mean_positives": 0.5, "max_positives": 1}
