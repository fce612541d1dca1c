"""The study planner on made-up label access: no dataset, no files — studies in, ModelSpecs out."""

from __future__ import annotations

import re

import pytest

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


TEACHER = {"q1": {"a": 1.0, "b": -1.0}, "q2": {"c": 0.0}, "q3": {"d": 0.5, "e": -0.5}}


class TeacherAccess(FakeAccess):
    """Adds teacher scores of the ``llm`` source (missing until ``ready``), recording how they were asked for."""

    def teacher(self, name, normalize="zscore", depth=30):
        self.asked.append(("teacher", name, normalize, depth))
        return TEACHER if self.ready else None


def test_teacher_study_rows_teacher_scores_and_keys():
    from utilabel.errors import ConfigError
    from utilabel.experiments.keys import model_key
    from utilabel.labels.teacher import teacher_digest

    cfg = config(sources=["llm"], losses=["disj_kl", "kl"], teacher="llm",
                 train={"teacher_temperature": 0.5, "distill_weight": 2.0, "teacher_normalize": "minmax"})
    data = TeacherAccess()
    specs = StudyPlanner(cfg, data).plan_study(cfg.studies[0])
    assert [s.row for s in specs] == ["llm+teacher(llm)/disj_kl", "llm+teacher(llm)/kl"]
    assert ("teacher", "llm", "minmax", 30) in data.asked  # normalised as the study's train options say
    s = specs[0]
    assert s.teacher == TEACHER and s.teacher_source == "llm" and s.labels == LLM
    assert s.train_options == {"teacher_temperature": 0.5, "distill_weight": 2.0, "teacher_normalize": "minmax"}
    assert s.key == model_key(cfg, labels_digest(LLM), "disj_kl", 1, 0, None, teacher_digest(TEACHER), s.train_options)
    # the key hashes the teacher scores and the study's options; the same labels without them hash as before
    assert s.key != model_key(cfg, labels_digest(LLM), "disj_kl", 1, 0)
    assert s.key != model_key(cfg, labels_digest(LLM), "disj_kl", 1, 0, None, teacher_digest({"q1": {"a": 0.0}}),
                              s.train_options)
    assert s.key != model_key(cfg, labels_digest(LLM), "disj_kl", 1, 0, None, teacher_digest(TEACHER),
                              {**s.train_options, "teacher_temperature": 1.0})
    assert StudyPlanner(cfg, TeacherAccess(ready=False)).plan_study(cfg.studies[0]) == []  # judgments missing
    plain = config(sources=["llm"], losses=["disj"])
    (p,) = StudyPlanner(plain, FakeAccess()).plan_study(plain.studies[0])
    assert p.row == "llm/disj" and p.teacher is None and p.key == model_key(plain, labels_digest(LLM), "disj", 1, 0)

    for study, message in [({"losses": ["kl"]}, "loss 'kl' needs teacher scores; name a source as teacher"),
                           ({"losses": ["kl", "disj"], "teacher": "llm"}, "loss 'disj' does not use the teacher"),
                           ({"losses": ["kl"], "teacher": "gpt"}, "unknown teacher source 'gpt'"),
                           ({"losses": ["kl"], "teacher": "llm", "train": {"loss": "kl"}}, "train.loss cannot be set"),
                           ({"losses": ["kl"], "teacher": "llm", "train": {"distill_weight": -1}},
                            "study 's': distill_weight must be a finite number >= 0")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            config(**study)
