"""The study planner on made-up label access: no dataset, no files — studies in, ModelSpecs out."""

from __future__ import annotations

from utilabel.experiments.config import ExperimentConfig
from utilabel.experiments.label_variants import label_stats, labels_digest
from utilabel.experiments.planner import StudyPlanner

HUMAN = {"q1": {"a": 1.0, "b": 0.0}, "q2": {"c": 1.0}, "q3": {"d": 1.0}}
LLM = {"q1": {"b": 0.8, "a": 0.0}, "q2": {"c": 0.6}, "q3": {"e": 0.9, "d": 0.0}}


class FakeAccess:
    """Labels by source name; ``llm`` is missing until ``ready``."""

    def __init__(self, ready: bool = True):
        self.ready, self.asked = ready, []

    def train_query_ids(self, how):
        return ["q1", "q2", "q3"]

    def labels(self, name, query_ids):
        self.asked.append(name)
        if name == "llm" and not self.ready:
            return None
        return {q: v for q, v in (HUMAN if name == "human" else LLM).items() if q in query_ids}

    def margins(self, name):
        return {"q1": 0.1, "q2": 3.0, "q3": -1.0}

    def candidates(self, depth=10):
        return {"q1": ["x", "a"], "q2": ["y", "c"], "q3": ["z", "d"]}

    def stats(self, labels):
        return label_stats(labels)


def config(**study):
    return ExperimentConfig.from_dict({
        "name": "t", "sources": [{"name": "human", "kind": "human"}, {"name": "llm", "path": "j.jsonl"}],
        "datasets": [{"name": "scifact"}], "studies": [{"name": "s", **study}]})


def test_label_study_rows_labels_and_keys():
    cfg = config(sources=["human", "llm"], losses=["disj", "infonce"], seeds=[0, 1], epochs=3, tag="3 epochs")
    specs = StudyPlanner(cfg, FakeAccess()).plan_study(cfg.studies[0])
    assert [(s.row, s.seed) for s in specs] == [
        ("human/disj [3 epochs]", 0), ("llm/disj [3 epochs]", 0), ("human/infonce [3 epochs]", 0),
        ("llm/infonce [3 epochs]", 0), ("human/disj [3 epochs]", 1), ("llm/disj [3 epochs]", 1),
        ("human/infonce [3 epochs]", 1), ("llm/infonce [3 epochs]", 1)]
    assert specs[1].labels == LLM and specs[1].labels_digest == labels_digest(LLM) and specs[1].epochs == 3
    assert specs[1].key == specs[3].key  # one positive per query: disj and infonce are one objective
    assert len({s.key for s in specs}) == 4 and specs[0].key != specs[4].key  # 2 sources × 2 seeds


def test_missing_llm_labels_skip_rows_and_ratio_studies():
    cfg = config(sources=["human", "llm"])
    assert [s.row for s in StudyPlanner(cfg, FakeAccess(ready=False)).plan_study(cfg.studies[0])] == ["human/infonce"]
    ratio = config(kind="ratio", llm_source="llm", human_ratios=[0.0, 0.34, 1.0], human_choice=["uncertain", "random"])
    assert StudyPlanner(ratio, FakeAccess(ready=False)).plan_study(ratio.studies[0]) == []


def test_ratio_and_noise_studies_mix_in_memory():
    ratio = config(kind="ratio", llm_source="llm", human_ratios=[0.0, 0.34, 1.0], human_choice=["uncertain", "random"])
    specs = StudyPlanner(ratio, FakeAccess()).plan_study(ratio.studies[0])
    assert [s.row for s in specs] == ["human ratio 0 (uncertain)/infonce", "human ratio 0.34 (uncertain)/infonce",
                                      "human ratio 0.34 (random)/infonce", "human ratio 1 (uncertain)/infonce"]
    assert specs[0].labels == LLM and specs[3].labels == HUMAN
    # uncertain: round(0.34 · 3) = 1 human query, the least certain: q2, whose every label is soft
    assert specs[1].labels == {**LLM, "q2": HUMAN["q2"]} and specs[1].human_ratio == 0.34
    noise = config(kind="noise", sources=["human"], noise_rates=[0.0, 0.5])
    specs = StudyPlanner(noise, FakeAccess()).plan_study(noise.studies[0])
    assert [s.row for s in specs] == ["noise 0%/infonce", "noise 50%/infonce"] and specs[0].labels == HUMAN
    assert specs[1].noise_rate == 0.5 and specs[1].method == "human-noise50%-s0"
