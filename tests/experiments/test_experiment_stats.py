"""Paired significance of grid comparisons, verdicts, label margins and the BM25-top-1 control,
with hand-computed values."""

from __future__ import annotations

import math

import pytest

from utilabel.experiments.label_variants import label_stats
from utilabel.experiments.report import per_query_values
from utilabel.experiments.stats import claim_verdict, paired, verdict
from utilabel.labels import rule_margins
from utilabel.labels.mixing import plan_labels, uncertain_order


def test_paired_statistics_match_hand_computation():
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, n 3; t(0.975, 2) = 4.302653
    a = {"q1": 0.5, "q2": 0.6, "q3": 0.9, "only-a": 1.0}
    b = {"q1": 0.4, "q2": 0.4, "q3": 0.6, "only-b": 0.0}
    res = paired("a", "b", "ds", a, b)
    assert res.n == 3
    assert res.diff == pytest.approx(0.2)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (res.ci_low, res.ci_high) == pytest.approx((0.2 - half, 0.2 + half), abs=1e-5)
    # paired t = 0.2 / (0.1 / sqrt 3) = 3.4641 on 2 df: two-sided p = 0.0742
    assert res.p == pytest.approx(0.0742, abs=1e-4)
    assert res.d == pytest.approx(2.0)
    # sign flips of three differences: 8 equally likely sums, |sum| ≥ 0.6 in 2 of them → exact p = 0.25
    assert res.p_rand == pytest.approx(0.25)
    # MDE = (t(0.975, 2) + t(0.8, 2)) · sd / sqrt(n); t(0.8, 2) = 1.060660
    assert res.mde == pytest.approx((4.302653 + 1.060660) * 0.1 / math.sqrt(3), abs=1e-5)
    assert paired("a", "b", "ds", {"q1": 1.0}, {"q1": 0.0}) is None


def test_verdicts_and_claims():
    res = paired("a", "b", "ds", {str(i): 0.5 + 0.01 * (i % 3) for i in range(60)},
                 {str(i): 0.5 for i in range(60)})
    assert res.p < 0.05 and res.diff > 0
    assert verdict(res) == "supports"
    assert verdict(res, "equivalence", margin=0.05) == "supports"  # 0.01 ± small, inside ± 0.05
    assert verdict(res, "equivalence", margin=0.005) == "contradicts"  # interval wholly above 0.005
    flipped = paired("b", "a", "ds", {str(i): 0.5 for i in range(60)}, {str(i): 0.5 + 0.01 * (i % 3) for i in range(60)})
    assert verdict(flipped) == "contradicts"
    assert verdict(None) == "missing"
    assert claim_verdict(["supports", "inconclusive"]) == "holds"
    assert claim_verdict(["supports", "contradicts"]) == "inconclusive at this scale"
    assert claim_verdict(["contradicts", "contradicts", "inconclusive"]) == "does not hold"
    assert claim_verdict(["inconclusive", "inconclusive"]) == "inconclusive at this scale"
    assert claim_verdict(["missing"]) == "not run"


def test_per_query_values_average_seeds_over_shared_queries():
    recs = [{"kind": "retrieval", "row": "r", "dataset": "d", "seed": 0, "per_query": {"a": 0.2, "b": 1.0}},
            {"kind": "retrieval", "row": "r", "dataset": "d", "seed": 1, "per_query": {"a": 0.4}},
            {"kind": "rag", "row": "r", "dataset": "d", "seed": 2, "per_query": {"a": 9.0}}]
    assert per_query_values(recs, "r", "d") == {"a": pytest.approx(0.3)}
    assert per_query_values(recs, "r", "other") == {}


def test_rule_margins_are_log_odds_gaps():
    ranked = {"clear": [("a", 0.9), ("b", 0.5), ("c", 0.1)], "tie": [("a", 0.5), ("b", 0.5)],
              "close": [("a", 0.55), ("b", 0.5)]}
    m = rule_margins(ranked, "top1")
    assert m["clear"] == pytest.approx(math.log(9))  # logit(0.9) − logit(0.5)
    assert m["tie"] == 0.0  # top1 selects nothing when every value is equal
    assert m["close"] == pytest.approx(math.log(0.55 / 0.45))
    # threshold 0.4: a and b positive in "clear" → weakest positive 0.5 vs strongest negative 0.1
    assert rule_margins(ranked, "threshold:0.4")["clear"] == pytest.approx(math.log(9))


def test_uncertain_choice_breaks_label_ties_by_margin():
    # one soft positive each: alike to the label-based uncertainty, so the margins decide
    llm = {q: {"d": 0.7, "e": 0.0} for q in "abcd"}
    llm["e"] = {"d": 0.0, "e": 0.0}  # no positive: a surer class than a soft positive, whatever its margin
    margins = {"a": 3.0, "b": 0.1, "c": 1.0, "e": 0.0}  # d has none: least certain of its class
    assert uncertain_order(llm, list("abcde"), seed=1, margins=margins) == ["d", "b", "c", "a", "e"]
    human = {q: {"h": 1.0} for q in "abcde"}
    plan = plan_labels(human, llm, human_ratio=0.4, strategy="uncertain", seed=1, margins=margins)
    assert plan.human_queries == ["b", "d"]
    without = uncertain_order(llm, list("abcde"), seed=1)  # no margins: a seeded coin toss within the class
    assert without[-1] == "e" and sorted(without[:4]) == list("abcd")


def test_label_stats_agreement_over_candidates():
    labels = {"q1": {"a": 0.8, "b": 0.0}, "q2": {"c": 1.0}}
    human = {"q1": {"b": 1.0}, "q2": {"c": 1.0, "z": 1.0}}
    cands = {"q1": ["a", "b", "x"], "q2": ["c", "y"]}
    st = label_stats(labels, human, cands)
    # pairs: q1 a (P, N), b (N, P), x (N, N); q2 c (P, P), y (N, N) → tp 1, fp 1, fn 1, tn 2
    assert (st["precision"], st["recall"]) == (0.5, 0.5)
    # kappa: p_o = 3/5, p_e = (2/5)(2/5) + (3/5)(3/5) = 13/25 → (15/25 − 13/25) / (12/25) = 1/6
    assert st["kappa"] == pytest.approx(1 / 6)
    assert st["mean_positives"] == 1.0


def test_results_archive_seeds_an_empty_grid_and_is_updated(tmp_path):
    from utilabel.experiments.results import archive_results, restore_results

    archive, out = tmp_path / "docs", tmp_path / "runs" / "exp"
    archive.mkdir()
    (archive / "results.jsonl").write_text('{"key": "BM25|s0|scifact|retrieval"}\n')
    (archive / "events.jsonl").write_text('{"event": "start"}\n')
    assert restore_results(out, archive)
    assert (out / "results.jsonl").read_text() == (archive / "results.jsonl").read_text()
    (out / "results.jsonl").write_text('{"key": "a"}\n{"key": "b"}\n')
    assert not restore_results(out, archive)  # never overwrites a grid in progress
    archive_results(out, archive)
    assert (archive / "results.jsonl").read_text() == '{"key": "a"}\n{"key": "b"}\n'
    assert not restore_results(tmp_path / "other", tmp_path / "empty")  # nothing archived: nothing to do


def test_report_claims_significance_and_label_quality_sections(tmp_path):
    import json as _json

    from utilabel.experiments.config import ExperimentConfig
    from utilabel.experiments.report import write_report

    cfg = ExperimentConfig.from_dict({
        "name": "t", "out": str(tmp_path / "exp"), "datasets": [{"name": "scifact"}, {"name": "arguana"}],
        "sources": [{"name": "human", "kind": "human"}, {"name": "llm", "path": "x.jsonl"}],
        "studies": [{"name": "main", "sources": ["human", "llm"], "losses": ["disj"]}],
        "claims": {"a": "LLM beats human out-of-domain"},
        "comparisons": [{"a": "llm/disj", "b": "human/disj", "claim": "a", "datasets": ["arguana"]},
                        {"a": "llm/disj", "b": "base", "datasets": ["scifact"]}]})
    pq = {"llm/disj": {"q1": 0.5, "q2": 0.6, "q3": 0.9}, "human/disj": {"q1": 0.4, "q2": 0.4, "q3": 0.6},
          "base": {"q1": 0.5, "q2": 0.6, "q3": 0.9}}
    stats = {"llm/disj": {"kappa": 0.5, "precision": 0.6, "recall": 0.5, "f1": 0.55, "mean_positives": 1.0},
             "human/disj": {"kappa": 0.9, "precision": 1.0, "recall": 0.8, "f1": 0.89, "mean_positives": 1.2}}
    recs = []
    for row, values in pq.items():
        for ds in ("scifact", "arguana"):
            recs.append({"key": f"{row}|s0|{ds}|retrieval", "row": row, "study": "reference" if row == "base" else "main",
                         "seed": 0, "dataset": ds, "kind": "retrieval", "n_queries": 3, "n_docs": 10,
                         "metrics": {"nDCG@10": sum(values.values()) / 3, "R@100": 1.0}, "per_query": values,
                         "time": 1.0, "seconds": 1.0, **({"label_stats": stats[row]} if row in stats else {})})
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "results.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in recs))
    text = write_report(cfg).read_text()
    # claim (a): Δ 0.2, paired t p 0.0742 (hand-computed above) → not significant → inconclusive
    assert "| (a) LLM beats human out-of-domain | llm/disj vs human/disj on arguana: Δ +0.200, p 0.074 (inconclusive)" in text
    assert "**inconclusive at this scale**" in text
    assert "| llm/disj | base | scifact | 3 | 1/1 | 0.667 | 0.667 | +0.000" in text  # identical values: p 1
    assert "| human/disj | 1.20 | 1.000 | 0.800 | 0.890 | 0.900 | 0.467 |" in text


def test_report_table_tells_unplanned_cells_from_unreached_ones():
    from utilabel.experiments.report import _table

    data = {("a/disj", "x"): {"m": [0.5, 0.7]}, ("a/disj", "y"): {"m": [0.4]}, ("b/disj", "x"): {"m": [0.3]}}
    lines = _table(["a/disj", "b/disj"], ["x", "y", "z"], data, "m",
                   planned={"a/disj": {"x", "y", "z"}, "b/disj": {"x"}}).splitlines()
    assert lines[2] == "| a/disj | 0.600 ± 0.141 | 0.400 | – | – (2/3) |"  # z planned, not reached
    assert lines[3] == "| b/disj | 0.300 | · | · | – (1/3) |"  # y, z asked by no study of b
