"""Retrieval measures equal pytrec_eval (trec_eval) to 1e-9, plus hand-computed edge cases."""

from __future__ import annotations

import math

import pytest
import pytrec_eval

from utilabel.data.registry import load_dataset
from utilabel.errors import ConfigError
from utilabel.evaluate.measures import parse_measure
from utilabel.evaluate.retrieval import evaluate_dataset, evaluate_run
from utilabel.retrieve.bm25 import BM25Retriever

PAIRS = [("nDCG@10", "ndcg_cut_10"), ("R@100", "recall_100"), ("AP", "map"), ("RR", "recip_rank"),
         ("P@10", "P_10"), ("nDCG", "ndcg"), ("R@10", "recall_10")]


def reference(run, qrels, level):
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100", "map", "recip_rank", "P.10", "ndcg"},
                                        relevance_level=level)
    per_query = ev.evaluate(run)
    top10 = {q: dict(sorted(d.items(), key=lambda kv: (-kv[1], [-ord(c) for c in kv[0]]))[:10]) for q, d in run.items()}
    rr10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=level).evaluate(top10)
    return per_query, rr10


@pytest.mark.parametrize("name", ["scifact", "arguana", "trec-dl19", "cranfield"])
def test_equals_pytrec_eval_on_bm25_runs(mirror, name):
    ds = load_dataset(name)
    queries = ds.split_queries("test")
    run = BM25Retriever(ds.corpus).search(queries, k=100)
    # add exact score ties to exercise trec_eval's tie-break (doc id descending)
    for docs in list(run.values())[:20]:
        for d in list(docs)[:6]:
            docs[d] = 1.0
    ours = evaluate_run(run, ds.qrels("test"), [p[0] for p in PAIRS] + ["RR@10"], relevance_level=ds.relevance_level)
    ref, rr10 = reference(run, ds.qrels("test"), ds.relevance_level)
    assert set(ref) <= set(ours.per_query)
    for qid, values in ref.items():
        for mine, theirs in PAIRS:
            assert ours.per_query[qid][mine] == pytest.approx(values[theirs], abs=1e-9), (qid, mine)
        assert ours.per_query[qid]["RR@10"] == pytest.approx(rr10[qid]["recip_rank"], abs=1e-9)
    if set(ref) == set(ds.qrels("test")):  # every judged query retrieved: means agree too
        for mine, theirs in PAIRS:
            assert ours.mean[mine] == pytest.approx(sum(v[theirs] for v in ref.values()) / len(ref), abs=1e-9)


def test_hand_computed_graded():
    qrels = {"q": {"a": 2, "b": 1, "c": 0, "z": 3}}
    run = {"q": {"a": 0.9, "c": 0.8, "b": 0.7, "x": 0.6}}
    r = evaluate_run(run, qrels, ["nDCG@3", "RR@10", "R@3", "P@2", "AP"], relevance_level=2)
    # DCG@3 = 2/log2(2) + 0/log2(3) + 1/log2(4) = 2 + 0.5 = 2.5
    # IDCG@3 = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5 = 4.76186
    assert r.mean["nDCG@3"] == pytest.approx(2.5 / (3 + 2 / math.log2(3) + 0.5))
    assert r.mean["RR@10"] == 1.0  # a (grade 2 ≥ level 2) at rank 1
    assert r.mean["R@3"] == 0.5  # relevant at level 2: a, z; only a retrieved
    assert r.mean["P@2"] == 0.5
    assert r.mean["AP"] == pytest.approx((1 / 1) / 2)  # a at rank 1; z never retrieved


def test_ties_broken_by_doc_id_descending():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0, "c": 1.0}}
    # trec_eval orders equal scores by doc id descending: c, b, a → a at rank 3
    assert evaluate_run(run, qrels, ["RR"]).mean["RR"] == pytest.approx(1 / 3)


def test_empty_partial_and_unjudged():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    # empty run: every judged query scores 0
    assert evaluate_run({}, qrels, ["nDCG@10"]).mean["nDCG@10"] == 0.0
    # partial run: q1 perfect, q2 missing → counted as 0 (trec_eval -c); q3 has no relevant doc → 0
    r = evaluate_run({"q1": {"a": 1.0}, "q9": {"a": 1.0}}, qrels, ["nDCG@10", "RR@10"])
    assert r.per_query["q1"]["nDCG@10"] == 1.0 and r.per_query["q2"]["nDCG@10"] == 0.0
    assert r.per_query["q3"]["RR@10"] == 0.0
    assert r.mean["nDCG@10"] == pytest.approx(1 / 3)
    assert "q9" not in r.per_query  # unjudged queries are ignored


def test_ignore_identical_ids():
    qrels = {"q": {"d": 1}}
    run = {"q": {"q": 5.0, "d": 1.0}}
    assert evaluate_run(run, qrels, ["RR@10"]).mean["RR@10"] == 0.5
    assert evaluate_run(run, qrels, ["RR@10"], ignore_identical_ids=True).mean["RR@10"] == 1.0


def test_measure_parsing():
    assert str(parse_measure("MRR@10")) == "RR@10"
    assert str(parse_measure("map")) == "AP"
    assert str(parse_measure("ndcg@10")) == "nDCG@10"
    for bad in ["nDCG@0", "foo@10", "R", "AP@10"]:
        with pytest.raises(ConfigError):
            parse_measure(bad)


def test_dl_binary_measures_use_level_two(mirror):
    ds = load_dataset("trec-dl19")
    qrels = ds.qrels("test")
    qid = next(iter(qrels))
    grade1 = [d for d, g in qrels[qid].items() if g == 1][:1]
    run = {qid: {grade1[0]: 1.0}}
    r = evaluate_dataset(run, ds, "test").per_query[qid]
    assert r["RR@10"] == 0.0  # grade 1 is not relevant for binary measures on DL
    assert r["nDCG@10"] > 0.0  # but it earns gain in nDCG
