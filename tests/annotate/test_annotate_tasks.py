"""Tasks, signal fusion, ranking measures and calibration of a run: hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from utilabel.annotate.calibration import calibrate_run
from utilabel.annotate.fusion import check_signals, expected_grade, fuse, standardise
from utilabel.annotate.prompts import _PLACEHOLDER, get_prompt, prompt_names
from utilabel.annotate.report import auc, run_quality
from utilabel.annotate.tasks import custom_task, get_task, resolve_task, task_names
from utilabel.cli.main import main
from utilabel.data.groups import read_groups
from utilabel.data.judgments import read_judgments, write_judgments
from utilabel.errors import ConfigError, UnknownNameError
from utilabel.labels import run_label_rule
from utilabel.records import Candidate, CandidateGroup, Judgment


def test_every_task_renders_every_compact_prompt():
    assert set(task_names()) >= {"qa", "claim", "counter-argument"}
    values = {"question": "Q?", "answer": "A.", "passage": "P.", "passages": ["P1", "P2"]}
    for name in task_names():
        task = get_task(name)
        assert task.ref == f"task:{name}@v{task.version}" and len(task.hash) == 12
        for ref in prompt_names():
            prompt = get_prompt(*ref.split("."))
            text = "\n".join(m["content"] for m in prompt.render(**task.values(), **values))
            assert not _PLACEHOLDER.search(text.replace("Q?", "")), (name, ref)
            if prompt.style == "compact" and "query_label" in prompt.placeholders:
                assert f"{task.query_label}: Q?" in text


def test_dataset_tasks_and_overrides(mirror):
    from utilabel.data.registry import load_dataset

    assert load_dataset("scifact").task == "claim" and load_dataset("arguana").task == "counter-argument"
    assert load_dataset("squad").task == "qa"
    assert resolve_task(None, None, "claim").name == "claim"
    assert resolve_task("qa", None, "claim").name == "qa"
    custom = resolve_task("qa", "Is the passage about cats?")
    assert custom.name == "custom" and custom.judge_question == "Is the passage about cats?"
    with pytest.raises(UnknownNameError, match="valid: claim, counter-argument, qa"):
        get_task("poetry")
    with pytest.raises(ConfigError, match="without braces"):
        custom_task("Is it {x}?")


def test_fusion_hand_computed():
    assert standardise([1.0, 3.0]) == [-1.0, 1.0] and standardise([2.0, 2.0]) == [0.0, 0.0]
    # yesno [0.5, -0.5] + 2 · z(ql [−10, −20]) = [0.5 + 2, −0.5 − 2]
    assert fuse({"yesno": [0.5, -0.5], "ql": [-10.0, -20.0]}, {"ql": 2.0}) == [2.5, -2.5]
    assert fuse({"first_stage": [1.0, 2.0, 3.0]}) == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    # graded without yesno is the base: logit(E/3); E = 1.5 → 0, E = 2.25 → log(3); first_stage z = ∓1
    assert fuse({"graded": [1.5, 2.25], "first_stage": [5.0, 1.0]}, {"first_stage": 0.5}) == pytest.approx(
        [0.5, math.log(3) - 0.5])
    assert fuse({"graded": [3.0]}) == pytest.approx([35.0])  # limited
    # near-certain "3": the ranking survives in 3 − E (1e-6 vs 1e-8 → log-odds differ by log 100)
    hi, lo = fuse({"graded": [3 - 1e-8, 3 - 1e-6]})
    assert hi - lo == pytest.approx(math.log(100), rel=1e-6)
    # grades: P ∝ (1, 1, 2, 0)/4 after renormalising → E = (0 + 1 + 4 + 0) / 4 = 1.25
    lp = {"0": math.log(0.1), "1": math.log(0.1), "2": math.log(0.2), "3": -math.inf}
    assert expected_grade(lp) == pytest.approx(1.25)
    assert check_signals("yesno,ql", {"ql": 1}) == (("yesno", "ql"), {"ql": 1.0})
    assert check_signals("graded,ql", {"ql": 2})[1] == {"ql": 2.0}
    for bad, w in (("yesno,bogus", None), ("yesno,yesno", None), ("", None), ("yesno", {"ql": 1.0}),
                   ("yesno,ql", {"ql": math.nan}), ("graded,ql", {"graded": 1.0})):
        with pytest.raises(ConfigError):
            check_signals(bad, w)


def test_auc_hand_computed():
    # order p n p n: pairs (p1>n1, p1>n2, p2>n2) correct, (n1>p2) wrong → 3/4
    assert auc(["p1", "n1", "p2", "n2"], {"p1", "p2"}) == 0.75
    assert auc(["a", "b"], {"a", "b"}) is None and auc(["a"], set()) is None


def _run(tmp_path):
    """Two queries, three candidates each; LLM prefers c2 in q1 (human: c1) and d1 in q2 (human: d1)."""
    cands = [CandidateGroup("q1", "Q1", tuple(Candidate(f"c{i}", i, 3.0 - i) for i in (1, 2, 3))),
             CandidateGroup("q2", "Q2", tuple(Candidate(f"d{i}", i, 3.0 - i) for i in (1, 2, 3)))]
    js = [Judgment("q1", "c1", "pointwise", utility=0.6), Judgment("q1", "c2", "pointwise", utility=0.8),
          Judgment("q1", "c3", "pointwise", utility=0.1), Judgment("q2", "d1", "pointwise", utility=0.7),
          Judgment("q2", "d2", "pointwise", utility=0.2), Judgment("q2", "d3", "pointwise", utility=0.65)]
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_judgments(tmp_path / "judgments.jsonl", js)
    (tmp_path / "config.json").write_text(json.dumps({"config": {"label_rule": "top1"}}))
    return cands, {"q1": {"c1": 1}, "q2": {"d1": 1, "x": 1}}


def test_run_quality_hand_computed(tmp_path):
    cands, qrels = _run(tmp_path / "run")
    q = run_quality(tmp_path / "run", qrels, ["top1", "threshold:0.5"])
    # LLM order q1: c2 c1 c3 (gold 2nd), q2: d1 d3 d2 (gold 1st); first-stage: gold 1st in both
    assert q.llm["P@1"] == 0.5 and q.llm["MRR"] == 0.75 and q.first_stage["P@1"] == 1.0
    assert q.llm["AUC"] == pytest.approx((0.5 + 1.0) / 2) and q.first_stage["AUC"] == 1.0
    # top1: q1 c2 (FP) + c1 FN, q2 d1 TP → tp1 fp1 fn1 tn3; human positives among candidates 1 per query
    a = q.rules["top1"]
    assert (a.tp, a.fp, a.fn, a.tn) == (1, 1, 1, 3) and q.human_pos_per_query == 1.0
    # threshold 0.5: q1 c1 c2, q2 d1 d3 → tp 2 fp 2 → 2 positives per query
    assert q.pos_per_query["threshold:0.5"] == 2.0
    assert (q.baseline.tp, q.baseline.fp) == (2, 0)
    # nDCG@10 q2 LLM: gold d1 at rank 1 but qrels also name x (not a candidate): ideal 1 + 1/log2(3)
    assert q.per_query["q2"]["llm_nDCG@10"] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_calibrate_run_stores_and_applies_the_rule(tmp_path):
    cands, qrels = _run(tmp_path / "run")
    assert run_label_rule(tmp_path / "run").spec == "top1"
    info = calibrate_run(tmp_path / "run", qrels, cands, top=1, n_queries=2, objective="f1")
    # with top1 always kept: T=0.8 → {c2, d1}: tp1 fp1 fn1 → F1 .5; T=0.7,0.65,0.6 add d3/c1 …
    # T=0.6 → {c1, c2, d1, d3}: tp2 fp2 → F1 .667 (best; T=0.2/0.1 add FPs) ⇒ calibrated:0.6
    assert info["rule"] == "top1+calibrated:0.6" and info["queries"] == ["q1", "q2"]
    assert info["f1"] == pytest.approx(2 / 3)
    assert run_label_rule(tmp_path / "run").spec == "top1+calibrated:0.6"
    groups = {g.query_id: g for g in read_groups(tmp_path / "run" / "groups.jsonl")}
    assert set(groups["q1"].positives) == {"c1", "c2"} and set(groups["q2"].positives) == {"d1", "d3"}
    assert read_judgments(tmp_path / "run" / "judgments.jsonl")  # judgments untouched


def test_cli_rejects_unknown_task_and_bad_rule(mirror, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["annotate", "--dataset", "scifact", "--task", "poetry", "--out", str(tmp_path / "a")])
    assert exc.value.code == 2 and "invalid choice: 'poetry'" in capsys.readouterr().err
    rc = main(["annotate", "--dataset", "scifact", "--label-rule", "top1+thresh:0.5", "--limit", "1",
               "--out", str(tmp_path / "b"), "--dry-run"])
    err = capsys.readouterr().err
    assert rc != 0 and "bad label rule 'top1+thresh:0.5'" in err and len(err.strip().splitlines()) == 1
    rc = main(["annotate", "--dataset", "scifact", "--label-rule", "calibrated", "--limit", "1",
               "--out", str(tmp_path / "c"), "--dry-run"])
    assert rc != 0 and "needs --calibrate-on" in capsys.readouterr().err
    rc = main(["annotate", "--dataset", "scifact", "--method", "pointwise", "--answer-source", "none",
               "--signals", "yesno,ql", "--limit", "2", "--k", "3", "--out", str(tmp_path / "d"), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and "calls              12 (without retries)" in out  # 2 queries × 3 passages × 2 signals


def test_cli_defaults_depend_on_the_backend(mirror, tmp_path, capsys):
    import argparse

    from utilabel.annotate.config import LOCAL_DEFAULTS
    from utilabel.cli.annotate import _annotate_args, _config
    from utilabel.data.registry import load_dataset

    p = argparse.ArgumentParser()
    _annotate_args(p)
    ds = load_dataset("scifact")
    local = _config(p.parse_args(["--dataset", "scifact", "--out", "x"]), ds)
    assert (local.method, local.answer_source, local.signals, local.label_rule, local.task) == (
        "pointwise", "none", LOCAL_DEFAULTS["signals"], LOCAL_DEFAULTS["label_rule"], "claim")
    assert local.weights == LOCAL_DEFAULTS["weights"] and local.max_passage_words == 100
    server = _config(p.parse_args(["--dataset", "scifact", "--out", "x", "--backend", "openai"]), ds)
    assert (server.method, server.label_rule, server.max_passage_words) == ("utilsel", "threshold:0.5", 150)
    mine = _config(p.parse_args(["--dataset", "scifact", "--out", "x", "--signals", "yesno", "--label-rule", "top2"]),
                   ds)
    assert (mine.signals, mine.weights, mine.label_rule) == (("yesno",), {}, "top2")
    rc = main(["annotate", "--dataset", "scifact", "--limit", "2", "--k", "3", "--out", str(tmp_path / "d"),
               "--dry-run"])
    assert rc == 0 and "calls              6 (without retries)" in capsys.readouterr().out  # one scored call each
