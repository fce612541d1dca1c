"""Training data: label plans from a config, in-memory labels, and group sampling (real SciFact qrels where it matters)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from utilabel.data.judgments import read_judgments
from utilabel.errors import ConfigError, DataFormatError
from utilabel.labels import positives
from utilabel.labels.mixing import plan_labels
from utilabel.labels.sources import human_labels
from utilabel.train.config import TrainConfig
from utilabel.train.data import GroupSampler, build_plan, training_data


def tiny_dataset(folder, queries: dict[str, str], positive: dict[str, str]):
    """A BEIR folder: passages a…h, ``queries`` (id → text), one train qrel per query (id → doc)."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": "", "text": f"passage {d}"}) + "\n"
                                                 for d in "abcdefgh"))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                + "".join(f"{q}\t{d}\t1\n" for q, d in positive.items()))
    return folder


def pointwise_run(folder, rule: str | None = "threshold:0.5"):
    """A pointwise annotation run as the engine writes it: ``utility = P(yes) / (P(yes) + P(no))``,
    above 0 for every passage, and the run's label rule in ``config.json``."""
    values = {"q1": {"a": 0.91, "b": 0.62, "c": 0.31, "d": 0.05}, "q2": {"e": 0.45, "f": 0.2}}
    folder.mkdir()
    (folder / "judgments.jsonl").write_text("".join(
        json.dumps({"query_id": q, "doc_id": d, "method": "pointwise", "utility": u}) + "\n"
        for q, docs in values.items() for d, u in docs.items()))
    (folder / "config.json").write_text(json.dumps({"config": {"method": "pointwise", "label_rule": rule}}))
    return folder / "judgments.jsonl"


def test_pointwise_judgments_train_only_the_rules_positives(tmp_path):
    """Defect 1: every pointwise value is > 0, yet only the run's rule (threshold 0.5: a and b) makes
    positives, with their value as weight; the rest are labelled negatives. An explicit rule wins."""
    data_dir = tiny_dataset(tmp_path / "ds", {"q1": "one", "q2": "two"}, {"q1": "a", "q2": "e"})
    path = pointwise_run(tmp_path / "run")
    cfg = TrainConfig(dataset=str(data_dir), labels=[str(path)], negatives_k=0, out=str(tmp_path / "o"))
    data = training_data(cfg)
    assert data.plan.labels(0) == {"q1": {"a": 0.91, "b": 0.62, "c": 0.0, "d": 0.0}, "q2": {"e": 0.0, "f": 0.0}}
    sampler = GroupSampler(data.plan, data.candidates, data.corpus_ids, group_size=6, max_positives=4, seed=0)
    g = sampler.group("q1", 0)
    assert {d: w for d, w in zip(g.doc_ids, g.weights, strict=True) if w > 0} == {"a": 0.91, "b": 0.62}
    assert not sampler.group("q2", 0).has_positive
    top1 = training_data(replace(cfg, label_rule="top1")).plan.labels(0)
    assert positives(top1["q1"]) == {"a": 0.91} and positives(top1["q2"]) == {"e": 0.45}


def test_judgment_files_with_different_rules_need_an_explicit_rule(tmp_path):
    a, b = pointwise_run(tmp_path / "a"), pointwise_run(tmp_path / "b", "top1")
    cfg = TrainConfig(dataset="scifact", labels=[str(a), str(b)], negatives_k=0, out=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match=r"declare different label rules \(threshold:0.5, top1\)"):
        build_plan(cfg, None)


def test_read_judgments_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "q1"}\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:1: not a judgment"):
        read_judgments(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_judgments(tmp_path / "missing.jsonl")


def test_sampler_rand1_rotation_and_negatives():
    plan = plan_labels({"q": {"p1": 1.0, "p2": 1.0, "p3": 1.0}}, None)
    cands = {"q": ["p1", "n1", "p2", "n2", "n3"]}
    corpus = ["p1", "p2", "p3", "n1", "n2", "n3", "r1", "r2", "r3", "r4"]
    s = GroupSampler(plan, cands, corpus, group_size=5, single_positive=True, seed=1)
    firsts = [s.group("q", e).doc_ids[0] for e in range(3)]
    assert sorted(firsts) == ["p1", "p2", "p3"]  # each positive once over 3 epochs
    for e in range(3):
        g = s.group("q", e)
        assert g.weights == [1.0, 0.0, 0.0, 0.0, 0.0]
        assert set(g.doc_ids[1:4]) == {"n1", "n2", "n3"}  # hard negatives exclude every positive
        assert g.doc_ids[4].startswith("r")  # random fill, never a positive
        assert g == s.group("q", e)  # deterministic
    multi = GroupSampler(plan, cands, corpus, group_size=5, max_positives=2, seed=1).group("q", 0)
    assert sum(w > 0 for w in multi.weights) == 2 and len(multi.doc_ids) == 5


def test_real_scifact_groups(mirror):
    from utilabel.data.registry import load_dataset
    from utilabel.retrieve.bm25 import bm25_candidates

    ds = load_dataset("scifact")
    human = human_labels(ds, "train")
    assert len(human) == 809
    cands = {g.query_id: [c.doc_id for c in g.candidates] for g in bm25_candidates(ds, "train", k=20, limit=50)}
    s = GroupSampler(plan_labels(human, None), cands, list(ds.corpus), group_size=8, seed=0, query_ids=list(cands))
    groups = s.epoch_groups(0)
    assert len(groups) == 50
    for g in groups:
        pos = {d for d, w in human[g.query_id].items() if w > 0}
        assert len(g.doc_ids) == 8 and len(set(g.doc_ids)) == 8
        assert {d for d, w in zip(g.doc_ids, g.weights) if w > 0} <= pos
        assert not (set(d for d, w in zip(g.doc_ids, g.weights) if w == 0) & pos)


def test_negatives_from_a_mined_candidates_file(tmp_path):
    """``negatives_file``: the hard negatives are each query's first ``negatives_k`` candidates of the
    file (a ``utilabel mine`` output) in its order, positives removed — not BM25's; a missing file or a
    candidate outside the corpus is a one-line error naming the file."""
    data_dir = tiny_dataset(tmp_path / "ds", {"q1": "one"}, {"q1": "a"})
    mined = tmp_path / "mined.jsonl"

    def write(ids):
        mined.write_text(json.dumps({"query_id": "q1", "query": "one", "candidates": [
            {"doc_id": d, "rank": r, "score": 1.0 - r / 10} for r, d in enumerate(ids, 1)]}) + "\n")

    write("gaefb")
    cfg = TrainConfig(dataset=str(data_dir), labels=["human"], negatives_k=3, negatives_file=str(mined),
                      out=str(tmp_path / "o"))
    data = training_data(cfg)
    assert data.candidates == {"q1": ["g", "a", "e"]}
    assert any("the first 3 of" in line for line in data.source)
    sampler = GroupSampler(data.plan, data.candidates, data.corpus_ids, group_size=3, seed=0,
                           negative_sampling="top")
    assert sampler.hard == {"q1": ["g", "e"]}  # the positive "a" is never a negative
    assert list(sampler.group("q1", 0).doc_ids) == ["a", "g", "e"]
    assert training_data(replace(cfg, negatives_k=0)).candidates == {"q1": list("gaefb")}
    write("gz")
    with pytest.raises(DataFormatError, match="mined.jsonl"):
        training_data(cfg)
    with pytest.raises(ConfigError, match="negatives_file .*nope.jsonl: no such file"):
        training_data(replace(cfg, negatives_file=str(tmp_path / "nope.jsonl")))
