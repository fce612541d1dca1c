"""The one resolver of label sources (:mod:`utilabel.labels.sources`): human qrels, judgments (method
filter, value field, recorded or explicit rule), first stage; tiny inline data, hand-computed labels."""

from __future__ import annotations

import json

import pytest

from utilabel.errors import ConfigError
from utilabel.labels.sources import (
    LabelSource,
    SourceReader,
    file_labels,
    first_stage_ranked,
    human_labels,
    parse_labels_option,
)


class TinyDataset:
    relevance_level = 2

    def qrels(self, split):
        assert split == "train"
        return {"q1": {"a": 2, "b": 1}, "q2": {"c": 3}}


def run_folder(tmp_path, name: str, rows, rule: str | None = None):
    """An annotation run folder: ``judgments.jsonl`` of ``rows`` (query, doc, method, utility, relevance)
    and, when ``rule``, the rule its ``config.json`` records."""
    folder = tmp_path / name
    folder.mkdir()
    with open(folder / "judgments.jsonl", "w") as fh:
        for q, d, m, u, r in rows:
            fh.write(json.dumps({"query_id": q, "doc_id": d, "method": m, "utility": u, "relevance": r}) + "\n")
    if rule:
        (folder / "config.json").write_text(json.dumps({"config": {"label_rule": rule}}))
    return folder / "judgments.jsonl"


ROWS = [("q1", "a", "pointwise", 0.9, None), ("q1", "b", "pointwise", 0.6, None), ("q1", "c", "pointwise", 0.2, None),
        ("q1", "a", "relsel", None, 0.0), ("q1", "b", "relsel", None, 1.0), ("q2", "d", "pointwise", 0.3, None)]


def test_human_labels_binary_at_the_relevance_level(tmp_path):
    assert human_labels(TinyDataset(), "train") == {"q1": {"a": 1.0, "b": 0.0}, "q2": {"c": 1.0}}
    qrels = tmp_path / "h.qrels"
    qrels.write_text("q9 0 z 2\nq9 0 y 1\n")
    assert human_labels(TinyDataset(), "train", qrels) == {"q9": {"z": 1.0, "y": 0.0}}
    reader = SourceReader(TinyDataset(), "train")
    assert reader.labels(LabelSource("human"), ["q2", "q7"]) == {"q2": {"c": 1.0}}


def test_judgments_recorded_rule_method_filter_and_field(tmp_path):
    path = run_folder(tmp_path, "run", ROWS, rule="top1")
    reader = SourceReader(None, "train")
    # pointwise under the recorded top1: the best candidate keeps its value, the others are negatives
    assert reader.labels(LabelSource("judgments", (str(path),), "pointwise")) == {
        "q1": {"a": 0.9, "b": 0.0, "c": 0.0}, "q2": {"d": 0.0}}  # q2: one candidate, nothing to distinguish
    # an explicit rule wins over the recorded one
    assert reader.labels(LabelSource("judgments", (str(path),), "pointwise", "threshold:0.5")) == {
        "q1": {"a": 0.9, "b": 0.6, "c": 0.0}, "q2": {"d": 0.0}}
    # no field given: each method's own label (relsel → relevance), as the trainer has always read them
    assert reader.labels(LabelSource("judgments", (str(path),), "relsel")) == {"q1": {"b": 1.0, "a": 0.0}}
    assert reader.labels(LabelSource("judgments", (str(path),), "relsel", field="utility")) == {}
    with pytest.raises(ConfigError, match="no usable judgments in .* for method 'relsel'"):
        reader.require_labels(LabelSource("judgments", (str(path),), "relsel", field="utility"))


def test_runs_that_record_different_rules_need_an_explicit_one(tmp_path):
    a = run_folder(tmp_path, "a", ROWS[:3], rule="top1")
    b = run_folder(tmp_path, "b", ROWS[5:])  # no rule recorded: the default threshold:0.5
    with pytest.raises(ConfigError, match=r"declare different label rules \(threshold:0.5, top1\)"):
        file_labels([a, b])
    assert file_labels([a, b], rule="top1") == {"q1": {"a": 0.9, "b": 0.0, "c": 0.0}, "q2": {"d": 0.0}}


def test_first_stage_values_by_rank_and_top1_by_default():
    cands = {"q": ["x", "y", "z", "w"]}
    assert first_stage_ranked(cands) == {"q": [("x", 1.0), ("y", 0.75), ("z", 0.5), ("w", 0.25)]}
    reader = SourceReader(None, "train", candidates=lambda: cands)
    assert reader.labels(LabelSource("first_stage")) == {"q": {"x": 1.0, "y": 0.0, "z": 0.0, "w": 0.0}}
    assert reader.labels(LabelSource("first_stage", rule="top2")) == {"q": {"x": 1.0, "y": 0.75, "z": 0.0, "w": 0.0}}
    # top1 separates x (value 1) from y (0.75): logit(1 - 1e-4) - logit(0.75)
    assert reader.margins(LabelSource("first_stage"))["q"] == pytest.approx(9.2102404 - 1.0986123)


def test_missing_judgments_give_none_and_are_looked_for_again(tmp_path):
    seen = []

    def read(paths):
        seen.append(paths)
        return None if len(seen) == 1 else []

    reader = SourceReader(None, "train", read_judgments=read)
    source = LabelSource("judgments", ("x.jsonl",), rule="top1")
    assert reader.labels(source) is None
    assert reader.labels(source) == {} and len(seen) == 2
    assert reader.labels(LabelSource("judgments", ("x.jsonl",), rule="top3")) == {} and len(seen) == 2  # shared read


def test_labels_option_and_bad_sources(tmp_path):
    qrels = tmp_path / "h.qrels"
    qrels.write_text("q 0 d 1\n")
    assert parse_labels_option(["human"]) == (LabelSource("human"), None)
    assert parse_labels_option([str(qrels), "j.jsonl"], "pointwise") == (
        LabelSource("human", (str(qrels),)), LabelSource("judgments", ("j.jsonl",), "pointwise"))
    with pytest.raises(ConfigError, match="kind must be one of human, judgments, first_stage"):
        LabelSource("oracle")
    with pytest.raises(ConfigError, match="needs at least one judgments file"):
        LabelSource("judgments")
    with pytest.raises(ConfigError, match="label field must be one of utility, relevance"):
        LabelSource("judgments", ("j.jsonl",), field="score")
    with pytest.raises(ConfigError, match="bad label rule"):
        LabelSource("first_stage", rule="best")


def test_with_qrels_keeps_the_source_passage_of_a_generated_query(tmp_path):
    # q1's qrels positive "a" (relevance 2 ≥ level 2) joins the judge's labels at weight 1.0; "b"
    # (relevance 1, below the level) does not; q2 has no judgment, so it stays out despite its qrels.
    rows = [("q1", "a", "pointwise", 0.2, None), ("q1", "b", "pointwise", 0.6, None),
            ("q1", "c", "pointwise", 0.9, None)]
    path = run_folder(tmp_path, "run", rows)
    reader = SourceReader(TinyDataset(), "train")
    plain = LabelSource("judgments", (str(path),), "pointwise", "top1")
    assert reader.labels(plain) == {"q1": {"a": 0.0, "b": 0.0, "c": 0.9}}
    kept = LabelSource("judgments", (str(path),), "pointwise", "top1", with_qrels=True)
    assert reader.labels(kept) == {"q1": {"a": 1.0, "b": 0.0, "c": 0.9}}
    # the first-stage control the same way: BM25's top1 "y" plus the qrels positive "a"
    bm25 = SourceReader(TinyDataset(), "train", candidates=lambda: {"q1": ["y", "a", "z"]})
    assert bm25.labels(LabelSource("first_stage", rule="top1", with_qrels=True)) == {
        "q1": {"y": 1.0, "a": 1.0, "z": 0.0}}
    with pytest.raises(ConfigError, match="with_qrels"):
        LabelSource("human", with_qrels=True)
