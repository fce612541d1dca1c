"""Checking mined negatives (:mod:`utilabel.annotate.check`): control flow with the scripted fake
backend (skip judged pairs, resume, dry run, refusals) and the labels of both modes on hand-made
judgments. The real-model check is in test_annotate_check_llamacpp.py."""

from __future__ import annotations

import json
import math

import pytest
from annotate_scripted import respond

from utilabel.annotate import AnnotateConfig, annotate
from utilabel.annotate.check import (
    check_backend,
    check_negatives,
    checked_groups,
    checked_labels,
    run_checked_labels,
    run_engines,
    unchecked_candidates,
    useful_bar,
)
from utilabel.data.judgments import write_judgments
from utilabel.errors import ConfigError
from utilabel.labels import parse_rule
from utilabel.llm import get_backend
from utilabel.records import Candidate, CandidateGroup, Document, Judgment

CFG = AnnotateConfig(method="pointwise", answer_source="none", signals=("yesno",), label_rule="top1+threshold:0.5")


def lp(messages, cont):
    """P(yes) = 0.8 for a passage that says 'useful', else 0.2 → utility 0.8 / 0.2."""
    p_yes = 0.8 if "useful" in messages[-1]["content"].split("\n\n")[0] else 0.2
    return math.log(p_yes if cont.lower() == "yes" else 1 - p_yes)


def fake():
    return get_backend("fake", responses=respond, logprobs=lp)


def setup():
    """Two queries; the run judged d0, d1 of each; mined lists d1 (judged), m0 (useful), m1, m2."""
    corpus, run_groups, mined = {}, [], []
    for q in ("q0", "q1"):
        for d, tag in (("d0", "useful"), ("d1", "other"), ("m0", "useful"), ("m1", "other"), ("m2", "other")):
            corpus[f"{q}{d}"] = Document(f"{q}{d}", f"passage {d} of {q} is {tag}")
        run_groups.append(CandidateGroup(q, f"question {q}?", (Candidate(f"{q}d0", 1, 2.0), Candidate(f"{q}d1", 2, 1.0))))
        mined.append(CandidateGroup(q, f"question {q}?", tuple(
            Candidate(f"{q}{d}", r, 1.0 - r / 10) for r, d in enumerate(("d1", "m0", "m1", "m2"), 1))))
    mined.append(CandidateGroup("q9", "not in the run?", (Candidate("q0m0", 1, 1.0),)))
    return corpus, run_groups, mined


def log_lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_check_judges_unseen_candidates_and_resumes(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, fake(), tmp_path, CFG, progress=False)
    run_log = (tmp_path / "calls.jsonl").read_bytes()
    res = check_negatives(tmp_path, mined, corpus, fake(), top=2)
    # the judged d1 is skipped; the first 2 unseen by rank are m0, m1; q9 is not a query of the run
    assert [(g.query_id, [c.doc_id for c in g.candidates]) for g in res.groups] == [
        ("q0", ["q0m0", "q0m1"]), ("q1", ["q1m0", "q1m1"])]
    assert {j.doc_id: j.utility for j in res.judgments} == pytest.approx(
        {"q0m0": 0.8, "q0m1": 0.2, "q1m0": 0.8, "q1m1": 0.2})
    assert res.summary["calls_new"] == 4 and res.summary["calls_cached"] == 0
    assert (tmp_path / "calls.jsonl").read_bytes() == run_log  # the run's own log and files are untouched
    assert json.loads((tmp_path / "checked" / "config.json").read_text()) == json.loads(
        (tmp_path / "config.json").read_text())
    # resume: a second check makes no call; a larger top makes only the new one
    again = check_negatives(tmp_path, mined, corpus, fake(), top=2)
    assert again.summary["calls_new"] == 0 and again.summary["calls_cached"] == 4
    more = check_negatives(tmp_path, mined, corpus, fake(), top=3)
    assert more.summary["calls_new"] == 2 and len(log_lines(tmp_path / "checked" / "calls.jsonl")) == 6


def test_check_dry_run_counts_without_backend(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, fake(), tmp_path, CFG, progress=False)
    res = check_negatives(tmp_path, mined, corpus, None, top=5, dry_run=True)
    assert res.candidates == 6  # m0, m1, m2 of each query (d1 judged)
    assert res.estimate.queries == 2 and res.estimate.calls == 6  # one scored call per passage (yesno)
    assert not (tmp_path / "checked").exists()


def test_check_refuses_listwise_runs_and_other_models(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, get_backend("fake", responses=respond), tmp_path / "u",
             AnnotateConfig(method="utilsel"), progress=False)
    with pytest.raises(ConfigError, match="needs a pointwise run with answer_source none"):
        check_negatives(tmp_path / "u", mined, corpus, fake())
    annotate(run_groups, corpus, fake(), tmp_path / "p", CFG, progress=False)
    other = get_backend("fake", responses=respond, logprobs=lp, model="other")
    with pytest.raises(ConfigError, match="other settings"):
        check_negatives(tmp_path / "p", mined, corpus, other)
    with pytest.raises(ConfigError, match="top must be"):
        unchecked_candidates([], mined, 0)


def test_check_refuses_another_engine_than_the_runs(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, fake(), tmp_path, CFG, progress=False)
    assert run_engines(tmp_path) == {"fake"}
    log = tmp_path / "calls.jsonl"
    records = log_lines(log)
    # the same run as if made with transformers: the fake backend's log-probabilities are not its own
    log.write_text("".join(json.dumps({**r, "engine": "transformers"}) + "\n" for r in records))
    assert run_engines(tmp_path) == {"transformers"}
    with pytest.raises(ConfigError, match="annotated with the transformers backend; check it with that backend, not fake"):
        check_negatives(tmp_path, mined, corpus, fake())
    assert not (tmp_path / "checked" / "calls.jsonl").exists()
    # a log older than the engine field (or a torn line) records none: nothing to enforce
    log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "engine"}) + "\n" for r in records)
                   + '{"key": "torn')
    assert run_engines(tmp_path) == set()
    assert check_negatives(tmp_path, mined, corpus, fake()).candidates == 6  # m0, m1, m2 of q0 and q1
    # such a run's default check backend: the engine its checked/ folder's log records, else llama.cpp
    assert check_backend(tmp_path) == ("fake", "fake")
    checked_log = tmp_path / "checked" / "calls.jsonl"
    checked = log_lines(checked_log)
    checked_log.write_text("".join(json.dumps({**r, "engine": "transformers"}) + "\n" for r in checked))
    assert check_backend(tmp_path) == ("transformers", "fake")
    checked_log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "engine"}) + "\n" for r in checked))
    assert check_backend(tmp_path) == ("llamacpp", "fake")
    assert check_backend(tmp_path, "openai", "m") == ("openai", "m")


def J(q, d, u):
    return Judgment(q, d, "pointwise", utility=u)


RUN = [J("q", "p", 0.9), J("q", "n", 0.3), J("r", "a", 0.4), J("r", "b", 0.2)]
CHECKED = [J("q", "x", 0.95), J("q", "y", 0.9), J("q", "z", 0.5), J("r", "c", 0.45), J("r", "e", 0.6),
           J("q", "w", None)]


def test_useful_bar_is_the_weakest_positive_else_the_threshold():
    rule = parse_rule("top1+threshold:0.5")
    assert useful_bar([("p", 0.9), ("n", 0.3)], rule) == 0.9
    # r: top1 → a (0.4) is a positive: bar 0.4 although below the threshold
    assert useful_bar([("a", 0.4), ("b", 0.2)], rule) == 0.4
    # all equal: top1 selects nothing, 0.3 < 0.5 → the threshold is the bar
    assert useful_bar([("a", 0.3), ("b", 0.3)], rule) == 0.5
    assert useful_bar([("a", 0.3), ("b", 0.3)], parse_rule("top1")) is None


def test_checked_labels_positive_and_drop_modes():
    rule = "top1+threshold:0.5"
    labels, exclude = checked_labels(RUN, CHECKED, rule, "positive")
    # q: bar 0.9 → x (0.95), y (0.9) useful; z (0.5) confirmed negative; w has no value
    # r: bar 0.4 → c (0.45), e (0.6) useful
    assert labels == {"q": {"p": 1.0, "n": 0.0, "x": 1.0, "y": 1.0, "z": 0.0},
                      "r": {"a": 1.0, "b": 0.0, "e": 1.0, "c": 1.0}}
    assert exclude == {}
    labels, exclude = checked_labels(RUN, CHECKED, rule, "drop")
    assert labels == {"q": {"p": 1.0, "n": 0.0, "z": 0.0}, "r": {"a": 1.0, "b": 0.0}}
    assert exclude == {"q": {"x", "y"}, "r": {"c", "e"}}
    with pytest.raises(ConfigError, match="mode must be one of positive, drop"):
        checked_labels(RUN, CHECKED, rule, "keep")


def test_checked_labels_edge_cases():
    # nothing checked: the run's labels; a pair the run judged keeps the run's label
    assert checked_labels(RUN, [], "top1") == ({"q": {"p": 1.0, "n": 0.0}, "r": {"a": 1.0, "b": 0.0}}, {})
    labels, _ = checked_labels(RUN, [J("q", "n", 0.99)], "top1")
    assert labels["q"] == {"p": 1.0, "n": 0.0}
    # a query without a positive under a threshold-free rule: every checked negative is confirmed
    flat = [J("s", "a", 0.5), J("s", "b", 0.5)]
    assert checked_labels(flat, [J("s", "c", 1.0)], "top1", "drop") == ({"s": {"a": 0.0, "b": 0.0, "c": 0.0}}, {})


def test_run_checked_labels_reads_the_folders(tmp_path):
    (tmp_path / "checked").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"config": {"label_rule": "top1"}}))
    write_judgments(tmp_path / "judgments.jsonl", RUN)
    write_judgments(tmp_path / "checked" / "judgments.jsonl", CHECKED)
    assert run_checked_labels(tmp_path, "drop") == checked_labels(RUN, CHECKED, "top1", "drop")


def test_checked_groups_of_both_modes(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, fake(), tmp_path, CFG, progress=False)
    check_negatives(tmp_path, mined, corpus, fake(), top=3)
    # run: d0 0.8 (top1 positive), d1 0.2; checked: m0 0.8 (≥ bar 0.8: useful), m1, m2 0.2
    pos = checked_groups(tmp_path, mined, "positive")
    assert [(g.query_id, g.positives, g.negatives) for g in pos] == [
        ("q0", {"q0d0": 1.0, "q0m0": 1.0}, ["q0d1", "q0m1", "q0m2"]),
        ("q1", {"q1d0": 1.0, "q1m0": 1.0}, ["q1d1", "q1m1", "q1m2"])]
    drop = checked_groups(tmp_path, mined, "drop")
    assert [(g.query_id, g.query, g.positives, g.negatives) for g in drop] == [
        ("q0", "question q0?", {"q0d0": 1.0}, ["q0d1", "q0m1", "q0m2"]),
        ("q1", "question q1?", {"q1d0": 1.0}, ["q1d1", "q1m1", "q1m2"])]


def test_checked_groups_negative_pools_and_rule(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, fake(), tmp_path, CFG, progress=False)
    check_negatives(tmp_path, mined, corpus, fake(), top=3)
    # a later mining that ranks m2 first and no longer lists the judged d1 (nor m0)
    later = [CandidateGroup(q, f"question {q}?", (Candidate(f"{q}m2", 1, 0.9), Candidate(f"{q}x", 2, 0.8),
                                                   Candidate(f"{q}m1", 3, 0.7))) for q in ("q0", "q1")]
    # mined pool: every candidate of the later list in rank order (the unjudged x too), positives left out
    pos = checked_groups(tmp_path, later, "positive")
    assert [(g.positives, g.negatives) for g in pos] == [
        ({"q0d0": 1.0, "q0m0": 1.0}, ["q0m2", "q0x", "q0m1"]), ({"q1d0": 1.0, "q1m0": 1.0}, ["q1m2", "q1x", "q1m1"])]
    # run pool: the run's judged candidates, then the checked ones (the unjudged x is not among them)
    run = checked_groups(tmp_path, later, "positive", negatives="run")
    assert [g.negatives for g in run] == [["q0d1", "q0m2", "q0m1"], ["q1d1", "q1m2", "q1m1"]]
    # another rule: top2 makes d1 (0.2) a positive, so the bar is 0.2 and every checked passage is useful
    top2 = checked_groups(tmp_path, later, "positive", rule="top2")
    assert top2[0].positives == {"q0d0": 1.0, "q0d1": 1.0, "q0m0": 1.0, "q0m1": 1.0, "q0m2": 1.0}
    assert top2[0].negatives == ["q0x"]
    dropped = checked_groups(tmp_path, later, "drop", rule="top2")
    assert (dropped[0].positives, dropped[0].negatives) == ({"q0d0": 1.0, "q0d1": 1.0}, ["q0x"])
    with pytest.raises(ConfigError, match="negatives must be one of mined, run"):
        checked_groups(tmp_path, later, negatives="bm25")


def test_a_later_check_judges_only_what_no_earlier_check_saw(tmp_path):
    corpus, run_groups, mined = setup()
    annotate(run_groups, corpus, fake(), tmp_path, CFG, progress=False)
    first = check_negatives(tmp_path, mined, corpus, fake(), top=1)  # m0 of each query
    res = check_negatives(tmp_path, mined, corpus, fake(), top=2, out_dir=tmp_path / "round1",
                          seen=first.judgments)
    assert [[c.doc_id for c in g.candidates] for g in res.groups] == [["q0m1", "q0m2"], ["q1m1", "q1m2"]]
    assert res.summary["calls_new"] == 4 and len(log_lines(tmp_path / "round1" / "calls.jsonl")) == 4
    labels, _ = run_checked_labels(tmp_path, "positive", checked_dirs=[tmp_path / "checked", tmp_path / "round1"])
    assert labels["q0"] == {"q0d0": 1.0, "q0d1": 0.0, "q0m0": 1.0, "q0m1": 0.0, "q0m2": 0.0}
