"""A TREC qrels file as the human label source of training (``--labels human.qrels judgments.jsonl``)."""

from __future__ import annotations

import pytest

from utilabel.data.judgments import write_judgments
from utilabel.data.registry import load_dataset
from utilabel.errors import ConfigError
from utilabel.labels.mixing import plan_labels
from utilabel.labels.sources import LabelSource, human_labels, parse_labels_option
from utilabel.records import Judgment
from utilabel.train.config import TrainConfig
from utilabel.train.data import build_plan


@pytest.fixture
def sources(tmp_path):
    qrels = tmp_path / "human.qrels"
    qrels.write_text("4 0 2739854 1\n4 0 14717500 0\n\n8 0 4414547 0\n")
    judgments = tmp_path / "judgments.jsonl"
    write_judgments(judgments, [Judgment(q, d, "utilsel", utility=u) for q, d, u in
                                [("4", "2739854", 0.5), ("8", "4414547", 1.0), ("14", "1", 0.0)]])
    return qrels, judgments


def test_labels_option_tells_qrels_from_judgments(sources, tmp_path):
    qrels, judgments = sources
    assert parse_labels_option([str(qrels), str(judgments)]) == (
        LabelSource("human", (str(qrels),)), LabelSource("judgments", (str(judgments),)))
    assert parse_labels_option(["human", str(judgments)], "utilsel", "top1") == (
        LabelSource("human"), LabelSource("judgments", (str(judgments),), "utilsel", "top1"))
    missing = str(tmp_path / "missing.jsonl")
    assert parse_labels_option([missing]) == (None, LabelSource("judgments", (missing,)))
    with pytest.raises(ConfigError, match="2 human sources"):
        parse_labels_option(["human", str(qrels)])


def test_qrels_file_labels_keep_judged_negatives(sources, mirror):
    qrels, _ = sources
    labels = human_labels(load_dataset("scifact"), "train", str(qrels))
    assert labels == {"4": {"2739854": 1.0, "14717500": 0.0}, "8": {"4414547": 0.0}}


def test_config_and_plan_take_the_qrels_file_as_the_human_share(sources, mirror, tmp_path):
    qrels, judgments = sources
    with pytest.raises(ConfigError, match="give human_ratio"):
        TrainConfig(labels=[str(qrels), str(judgments)])
    config = TrainConfig(labels=[str(qrels), str(judgments)], human_ratio=1.0, mix_strategy="uncertain",
                         out=str(tmp_path / "t"))
    plan = build_plan(config, load_dataset("scifact"))
    # every labelled query (and only those) is human; the unlabelled query 14 keeps its LLM labels
    assert plan.human_queries == ["4", "8"]
    assert plan.labels(0) == {"4": {"2739854": 1.0, "14717500": 0.0}, "8": {"4414547": 0.0}, "14": {"1": 0.0}}
    assert plan == plan_labels(human_labels(load_dataset("scifact"), "train", str(qrels)),
                               {"4": {"2739854": 0.5}, "8": {"4414547": 1.0}, "14": {"1": 0.0}}, 1.0, "uncertain", 42)
