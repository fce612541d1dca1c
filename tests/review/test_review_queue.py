"""The review queue: order (the trainer's ``uncertain`` choice), budget, suggestions, graded mode, errors."""

from __future__ import annotations

import json

import pytest
from review_data import make_review_run

from utilabel.data.judgments import write_judgments
from utilabel.data.registry import load_dataset
from utilabel.errors import ConfigError
from utilabel.labels.mixing import plan_labels
from utilabel.labels.sources import file_labels
from utilabel.records import Judgment
from utilabel.review import build_queue, parse_budget


def test_budget_is_a_fraction_or_a_count():
    assert parse_budget("0.2", 162) == 32  # round(32.4), as --human-ratio 0.2 counts
    assert parse_budget("0.25", 6) == 2  # round(1.5) = 2 (banker's rounding, as the trainer's round)
    assert parse_budget("150", 162) == 150 and parse_budget("500", 162) == 162
    for bad in ("0", "0.0", "1.5", "-3", "many"):
        with pytest.raises(ConfigError, match="--budget must be a fraction"):
            parse_budget(bad, 10)


def test_queue_is_the_order_the_uncertain_mix_spends_the_budget(review_run):
    data, run = review_run
    queue = build_queue([run], load_dataset(data), "train", "4")
    ids = [item.query_id for item in queue.items]
    assert ids[:2] == ["q4", "q2"]  # soft labels: 2 of 3 passages, then 1 of 3
    assert set(ids[2:]) == {"q3", "q5"}  # no positive / every passage positive
    assert queue.total == 6 and queue.methods == ["utilsel"]
    # the trainer, given human labels for every query and ratio 4/6, picks exactly these queries
    llm = file_labels([run / "judgments.jsonl"])
    plan = plan_labels({q: {"x": 1.0} for q in llm}, llm, human_ratio=4 / 6, strategy="uncertain", seed=42)
    assert sorted(ids) == plan.human_queries


def test_items_show_passages_in_run_order_with_labels_and_suggestions(review_run):
    data, run = review_run
    item = build_queue([run], load_dataset(data), "train", "1").items[0]
    assert item.query_id == "q4" and item.query == "question q4 about topic 3"
    assert [p.doc_id for p in item.passages] == ["d10", "d11", "d12"]
    assert [p.llm["utilsel"] for p in item.passages] == [0.5, 0.5, 0.0]
    assert [p.suggestion for p in item.passages] == [1, 1, 0]  # the default rule threshold:0.5
    assert item.passages[0].title == "Title 10" and item.passages[0].text == "Passage 10 about topic 2."
    # the run's own label rule decides the suggestion: top1 keeps d10 only (tie with d11 → written order)
    (run / "config.json").write_text(json.dumps({"config": {"label_rule": "top1"}}))
    item = build_queue([run], load_dataset(data), "train", "1").items[0]
    assert item.query_id == "q4" and [p.suggestion for p in item.passages] == [1, 0, 0]


def test_several_runs_side_by_side(review_run, tmp_path):
    data, run = review_run
    other = tmp_path / "run-pointwise"
    other.mkdir()
    write_judgments(other / "judgments.jsonl", [Judgment("q4", "d10", "pointwise", utility=0.9),
                                                Judgment("q4", "d12", "pointwise", utility=0.2)])
    queue = build_queue([run, other], load_dataset(data), "train", "6")
    assert queue.methods == ["pointwise", "utilsel"]
    q4 = next(item for item in queue.items if item.query_id == "q4")
    assert [(p.llm["pointwise"], p.llm["utilsel"]) for p in q4.passages] == [(0.9, 0.5), (None, 0.5), (0.2, 0.0)]
    # suggested = the trainer's LLM positive over both runs (rule threshold:0.5 on the mean value):
    # d10 (1 + 0 + 0.9) / 3 = 0.63, d11 0.5, d12 (0 + 0 + 0.2) / 3 = 0.07
    assert [p.suggestion for p in q4.passages] == [1, 1, 0]
    (other / "config.json").write_text(json.dumps({"config": {"label_rule": "threshold:0.95"}}))
    with pytest.raises(ConfigError, match="declare different label rules"):  # as the trainer would
        build_queue([run, other], load_dataset(data), "train", "6")
    queue = build_queue([run, other], load_dataset(data), "train", "6", label_rule="threshold:0.6")
    q4 = next(item for item in queue.items if item.query_id == "q4")
    assert [p.suggestion for p in q4.passages] == [1, 0, 0]


def test_graded_dataset_gives_graded_suggestions(tmp_path):
    data, run = make_review_run(tmp_path, grades={"q1": 3, "q2": 2})
    queue = build_queue([run], load_dataset(data), "train", "6")
    assert queue.max_grade == 3
    q4 = next(item for item in queue.items if item.query_id == "q4")
    assert [p.suggestion for p in q4.passages] == [2, 2, 0]  # round(0.5 · 3) = 2 (round half to even)


def test_bad_inputs_are_one_line_errors(review_run, tmp_path):
    data, run = review_run
    ds = load_dataset(data)
    with pytest.raises(ConfigError, match="run folder .*nowhere not found"):
        build_queue([tmp_path / "nowhere"], ds, "train")
    with pytest.raises(ConfigError, match="has no judgments.jsonl"):
        build_queue([data], ds, "train")
    with pytest.raises(ConfigError, match=r"--budget 0.05 of 6 queries selects none"):
        build_queue([run], ds, "train", "0.05")
    with pytest.raises(ConfigError, match="has no split 'test'"):
        build_queue([run], ds, "test")
    stray = tmp_path / "stray"
    stray.mkdir()
    write_judgments(stray / "judgments.jsonl", [Judgment("q99", "d1", "utilsel", utility=1.0)])
    with pytest.raises(ConfigError, match="query 'q99' of the runs is not a train query of mini"):
        build_queue([stray], ds, "train")
    write_judgments(stray / "judgments.jsonl", [Judgment("q1", "nope", "utilsel", utility=1.0)])
    with pytest.raises(ConfigError, match="passage 'nope' of the runs is not in the corpus of mini"):
        build_queue([stray], ds, "train")
