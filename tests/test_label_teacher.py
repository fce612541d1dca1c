"""Teacher scores (utilabel.labels.teacher): per-source values and per-query normalisation, by hand."""

from __future__ import annotations

import math

import pytest

from utilabel.errors import ConfigError
from utilabel.labels.teacher import (
    TeacherSpec,
    judgment_teacher_score,
    judgments_teacher,
    normalize_teacher,
    parse_teacher_spec,
    read_teacher,
    teacher_digest,
)
from utilabel.records import Candidate, CandidateGroup, Judgment


def test_judgment_scores_per_method():
    # pointwise: the fused log-odds when set, else logit(utility) clipped to [1e-4, 1 - 1e-4]
    assert judgment_teacher_score(Judgment("q", "d", "pointwise", utility=0.9, score=2.5)) == 2.5
    assert judgment_teacher_score(Judgment("q", "d", "pointwise", utility=0.8)) == pytest.approx(math.log(4))
    assert judgment_teacher_score(Judgment("q", "d", "pointwise", utility=1.0)) == pytest.approx(math.log(9999))
    assert judgment_teacher_score(Judgment("q", "d", "pointwise", utility=0.0)) == pytest.approx(-math.log(9999))
    # other methods (utilrank grades, vote shares): utility; no utility → no score
    assert judgment_teacher_score(Judgment("q", "d", "utilrank", utility=0.75, score=9.0)) == 0.75
    assert judgment_teacher_score(Judgment("q", "d", "utilrank")) is None
    js = [Judgment("q", "a", "utilrank", utility=0.5), Judgment("q", "a", "utilrank", utility=1.0),
          Judgment("q", "b", "pointwise", score=-1.0), Judgment("p", "c", "utilrank")]
    assert judgments_teacher(js) == {"q": {"a": 0.75, "b": -1.0}}  # a judged twice: the mean
    assert judgments_teacher(js, "pointwise") == {"q": {"b": -1.0}}


def test_normalisations_by_hand():
    t = {"q": {"a": 1.0, "b": 3.0}, "flat": {"x": 2.0, "y": 2.0}, "one": {"z": 5.0}}
    # zscore: mean 2, population std 1 → -1, +1; all-equal and single-score queries → 0
    assert normalize_teacher(t) == {"q": {"a": -1.0, "b": 1.0}, "flat": {"x": 0.0, "y": 0.0}, "one": {"z": 0.0}}
    assert normalize_teacher({"q": {"a": 0.0, "b": 1.0, "c": 4.0}}, "minmax") == {"q": {"a": 0.0, "b": 0.25, "c": 1.0}}
    assert normalize_teacher(t, "minmax")["flat"] == {"x": 0.0, "y": 0.0}
    assert normalize_teacher(t, "none") == t
    with pytest.raises(ConfigError, match="teacher_normalize must be one of zscore, minmax, none"):
        normalize_teacher(t, "rank")


def test_specs_and_sources(tmp_path):
    assert parse_teacher_spec("first_stage") == TeacherSpec("first_stage")
    assert parse_teacher_spec("run:r.trec") == TeacherSpec("run", "r.trec")
    assert parse_teacher_spec("runs/j.jsonl") == TeacherSpec("judgments", "runs/j.jsonl")
    assert str(parse_teacher_spec("human:q.txt")) == "human:q.txt" and str(parse_teacher_spec("human")) == "human"
    with pytest.raises(ConfigError, match="names no file"):
        parse_teacher_spec("run:")
    run = tmp_path / "r.trec"
    run.write_text("q Q0 a 1 4.0 x\nq Q0 b 2 2.0 x\n")
    assert read_teacher(f"run:{run}", normalize="none") == {"q": {"a": 4.0, "b": 2.0}}
    assert read_teacher(f"run:{run}") == {"q": {"a": 1.0, "b": -1.0}}
    qrels = tmp_path / "q.txt"
    qrels.write_text("q 0 a 2\nq 0 b 0\n")
    assert read_teacher(f"human:{qrels}", normalize="minmax") == {"q": {"a": 1.0, "b": 0.0}}
    groups = [CandidateGroup("q", "Q", (Candidate("a", 1, 12.5), Candidate("b", 2, 10.0)))]
    assert read_teacher("first_stage", candidates=lambda: groups, normalize="none") == {"q": {"a": 12.5, "b": 10.0}}
    with pytest.raises(ConfigError, match="first_stage teacher needs first-stage candidates"):
        read_teacher("first_stage")
    j = tmp_path / "j.jsonl"
    j.write_text('{"query_id": "q", "doc_id": "a", "method": "pointwise", "utility": 0.5}\n')
    assert read_teacher(str(j), normalize="none") == {"q": {"a": 0.0}}  # logit(0.5)
    with pytest.raises(ConfigError, match="gives no scores for method 'utilrank'"):
        read_teacher(str(j), method="utilrank")
    with pytest.raises(ConfigError, match="does not exist"):
        read_teacher(str(tmp_path / "missing.jsonl"))


def test_digest_is_order_free_and_value_sensitive():
    a = {"q": {"a": 1.0, "b": 2.0}, "p": {"c": 0.0}}
    b = {"p": {"c": 0.0}, "q": {"b": 2.0, "a": 1.0}}
    assert teacher_digest(a) == teacher_digest(b) and len(teacher_digest(a)) == 12
    assert teacher_digest(a) != teacher_digest({"q": {"a": 1.0, "b": 2.5}, "p": {"c": 0.0}})
