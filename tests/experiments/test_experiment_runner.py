"""The runner end to end on real data with real training (a couple of steps) and dense retrieval
over a small real corpus: plan, train, evaluate, RAG (scripted reader for control flow), report,
and resume: a second run trains and evaluates nothing."""

from __future__ import annotations

import json
import math

import pytest

from utilabel.experiments.config import ExperimentConfig
from utilabel.experiments.report import write_report
from utilabel.experiments.runner import ExperimentRunner
from utilabel.fileio import AppendLog


@pytest.fixture(scope="module")
def tiny_squad(beir_subset, tmp_path_factory):
    """A BEIR folder: 12 SQuAD test questions and 120 passages (their gold ones included)."""
    return beir_subset("squad", 12, 120, tmp_path_factory.mktemp("tiny_squad"))


def _config(tmp_path, tiny, judgments):
    return ExperimentConfig.from_dict({
        "name": "tiny", "out": str(tmp_path / "exp"),
        "sources": [{"name": "human", "kind": "human"}, {"name": "llm", "path": str(judgments)}],
        "datasets": [{"name": str(tiny), "max_queries": 8, "rag": True}],
        "studies": [
            {"name": "main", "kind": "labels", "sources": ["human", "llm"], "losses": ["disj"]},
            {"name": "ratio", "kind": "ratio", "sources": ["human"], "llm_source": "llm",
             "human_ratios": [0.0, 1.0], "losses": ["disj"]},
        ],
        "train": {"max_steps": 1, "batch_size": 4, "group_size": 2, "passage_max_len": 16, "query_max_len": 8},
        "dense": {"max_length": 32, "query_max_length": 16, "k": 10},
        "rag": {"reader": "fake", "options": {"responses": ["Denver Broncos"], "cycle": True}, "limit": 3,
                "rows": ["BM25", "llm/disj"]},
    })


def test_grid_runs_resumes_and_reports(tmp_path, tiny_squad, mirror):
    from utilabel.data.registry import load_dataset

    sf = load_dataset("scifact")
    qids = list(sf.qrels("train"))[:6]
    judgments = tmp_path / "judgments.jsonl"
    other = list(sf.corpus)[:6]
    with open(judgments, "w") as fh:  # an "LLM" right on even queries, wrong on odd ones
        for i, q in enumerate(qids):
            d = next(iter(sf.qrels("train")[q])) if i % 2 == 0 else other[i]
            fh.write(json.dumps({"query_id": q, "doc_id": d, "method": "utilsel", "relevance": 1, "utility": 1.0}) + "\n")
    cfg = _config(tmp_path, tiny_squad, judgments)
    runner = ExperimentRunner(cfg)
    specs = runner.plan()
    # human vs llm on the same 6 annotated queries; ratio 0 = llm labels, ratio 1 = human labels
    assert [s.row for s in specs] == ["human/disj", "llm/disj", "human ratio 0/disj", "human ratio 1/disj"]
    assert specs[0].label_stats["queries"] == 6
    assert specs[2].key == specs[1].key and specs[3].key == specs[0].key  # identical labels → same model
    counts = runner.run()
    assert counts["trained"] == 2  # four rows, two distinct models
    recs = AppendLog.read(tmp_path / "exp" / "results.jsonl")
    rows = {(r["row"], r["kind"]) for r in recs}
    assert {("BM25", "retrieval"), ("base", "retrieval"), ("llm/disj", "rag"), ("BM25", "rag"),
            ("human ratio 0/disj", "retrieval")} <= rows
    alias = next(r for r in recs if r["row"] == "human ratio 0/disj")
    llm = next(r for r in recs if r["row"] == "llm/disj" and r["kind"] == "retrieval")
    assert alias["alias_of"] == "llm/disj" and alias["metrics"] == llm["metrics"]
    assert all(r["n_queries"] == 8 for r in recs if r["kind"] == "retrieval")
    assert 0.0 <= llm["metrics"]["nDCG@10"] <= 1.0 and llm["metrics"]["R@100"] > 0.5  # 120 docs, k = 10

    again = ExperimentRunner(cfg).run()
    assert again["trained"] == 0 and again["evaluated"] == 0

    report = write_report(cfg).read_text()
    assert "| BM25 |" in report and "| llm/disj |" in report and "## Human-ratio curve" in report
    assert "8 queries over all 120 documents" in report
    assert (tmp_path / "exp" / "plots").is_dir()


def test_missing_judgments_are_reported_not_fatal(tmp_path, tiny_squad):
    cfg = _config(tmp_path, tiny_squad, tmp_path / "absent.jsonl")
    runner = ExperimentRunner(cfg)
    rows = [s.row for s in runner.plan()]
    assert rows == ["human/disj"]
    assert any("judgments file" in n and "not found" in n for n in runner.notes)


def test_bm25_control_and_uncertain_vs_random_human_choice(tmp_path, mirror):
    """The free control labels BM25's top hit; the 20 % human budget goes to the smallest LLM margins
    under ``uncertain`` and to a seeded random draw under ``random``, as separate rows."""
    from utilabel.data.registry import load_dataset

    sf = load_dataset("scifact")
    train = sf.qrels("train")
    qids = list(train)[:9] + [next(q for q in train if len(train[q]) > 1)]  # one query with 2+ positives
    judgments = tmp_path / "run" / "judgments.jsonl"
    judgments.parent.mkdir()
    (judgments.parent / "config.json").write_text(json.dumps({"config": {"label_rule": "top1"}}))
    cfg = ExperimentConfig.from_dict({
        "name": "t", "out": str(tmp_path / "exp"),
        "sources": [{"name": "human", "kind": "human"}, {"name": "llm", "path": str(judgments)},
                    {"name": "bm25-top1", "kind": "first_stage"}],
        "datasets": [{"name": "scifact"}],
        "studies": [{"name": "main", "sources": ["human", "bm25-top1"], "losses": ["disj", "infonce"]},
                    {"name": "mix", "kind": "ratio", "llm_source": "llm", "human_ratios": [0.2],
                     "human_choice": ["uncertain", "random"], "losses": ["disj"]},
                    {"name": "long", "sources": ["bm25-top1"], "losses": ["disj"], "epochs": 3, "tag": "3 epochs"}]})
    runner = ExperimentRunner(cfg)
    cands = runner.data.candidates()
    with open(judgments, "w") as fh:  # the LLM's top choice is BM25's 2nd hit; margin grows with the query index
        for i, q in enumerate(qids):
            for r, d in enumerate(cands[q][:3]):
                u = 0.5 + 0.04 * i if r == 1 else 0.5
                fh.write(json.dumps({"query_id": q, "doc_id": d, "method": "pointwise", "utility": u}) + "\n")
    specs = runner.plan()
    assert [s.row for s in specs] == ["human/disj", "bm25-top1/disj", "human/infonce", "bm25-top1/infonce",
                                      "human ratio 0.2 (uncertain)/disj", "human ratio 0.2 (random)/disj",
                                      "bm25-top1/disj [3 epochs]"]
    assert specs[6].key != specs[1].key and specs[6].epochs == 3  # the tag names rows trained otherwise
    # one positive per query: disj and infonce are one objective, trained once; not so for several
    assert specs[1].key == specs[3].key and specs[1].label_stats["max_positives"] == 1
    assert specs[0].label_stats["max_positives"] > 1 and specs[0].key != specs[2].key
    specs = [specs[0], specs[1], specs[4], specs[5]]
    bm25 = runner.data.labels("bm25-top1", qids)
    assert all({d for d, w in bm25[q].items() if w > 0} == {cands[q][0]} for q in qids)
    assert specs[0].label_stats["queries"] == 10 and "kappa" in specs[1].label_stats
    # uncertain: every query with a positive looks alike to the label-based uncertainty, so the two
    # smallest margins (queries 1 and 2) get human labels; query 0 has no positive, a surer class
    human_q = {q for q, docs in specs[2].labels.items() if 1.0 in docs.values()}  # LLM weights here are < 1
    assert human_q == {qids[1], qids[2]}
    assert specs[2].key != specs[3].key


def test_heldout_dev_set_is_the_training_split_minus_every_trained_query(tmp_path, mirror):
    """A ``heldout`` dataset evaluates on the training split's queries that no study trains on: a
    development set for choosing settings without the test split."""
    from utilabel.data.registry import load_dataset

    cfg = ExperimentConfig.from_dict({
        "name": "t", "out": str(tmp_path / "exp"), "sources": [{"name": "human", "kind": "human"}],
        "datasets": [{"name": "scifact", "split": "train", "heldout": True}],
        "studies": [{"name": "a", "train_queries": 10}, {"name": "b", "train_queries": 30}]})
    runner = ExperimentRunner(cfg)
    train_q = list(load_dataset("scifact").split_queries("train"))
    trained = set(runner.data.train_query_ids(10)) | set(runner.data.train_query_ids(30))
    assert 30 <= len(trained) <= 40
    dev = runner.data.sample("scifact")
    assert dev == [q for q in train_q if q not in trained] and len(dev) == len(train_q) - len(trained)


def test_fusion_rows_fuse_each_dense_run_with_bm25_and_resume(tmp_path, tiny_squad):
    """With a fusion section every dense row gets a ``+BM25`` row; the recorded weight is the grid value
    that maximises nDCG@10 on that dataset, and the fused value is what fusing the written runs gives."""
    from utilabel.data.registry import load_dataset
    from utilabel.data.trec import read_trec_run
    from utilabel.evaluate.fusion import choose_fusion_weight
    from utilabel.evaluate.retrieval import evaluate_run
    from utilabel.experiments.results import result_key
    from utilabel.retrieve.hybrid import fuse, top_k

    cfg = ExperimentConfig.from_dict({
        "name": "fused", "out": str(tmp_path / "exp"), "train_dataset": str(tiny_squad), "train_split": "test",
        "sources": [{"name": "human", "kind": "human"}],
        "datasets": [{"name": str(tiny_squad), "max_queries": 8}],
        "studies": [{"name": "main", "kind": "labels", "sources": ["human"], "losses": ["disj"]}],
        "train": {"max_steps": 1, "batch_size": 4, "group_size": 2, "passage_max_len": 16, "query_max_len": 8},
        "dense": {"max_length": 32, "query_max_length": 16, "k": 10},
        "fusion": {"method": "zscore", "weight": "choose", "grid": [0.0, 0.3, 0.5, 0.7, 1.0]},
    })
    counts = ExperimentRunner(cfg).run()
    recs = {(r["row"], r["kind"]): r for r in AppendLog.read(tmp_path / "exp" / "results.jsonl")}
    assert {"base +BM25", "human/disj +BM25"} <= {row for row, _ in recs}
    assert ("BM25 +BM25", "retrieval") not in recs
    ds = load_dataset(str(tiny_squad))
    qrels = {q: ds.qrels("test")[q] for q in recs[("base", "retrieval")]["per_query"]}
    runs = tmp_path / "exp" / "runs"
    bm25 = read_trec_run(runs / "BM25-s0-tiny_squad.trec") if (runs / "BM25-s0-tiny_squad.trec").exists() else None
    for row, name in (("base", "base"), ("human/disj", "human-disj")):
        fused_rec = recs[(f"{row} +BM25", "retrieval")]
        dense = read_trec_run(next(runs.glob(f"{name}-s0-*.trec")))
        bm25 = bm25 or read_trec_run(next(runs.glob("BM25-s0-*.trec")))
        choice = choose_fusion_weight(bm25, dense, qrels, [0.0, 0.3, 0.5, 0.7, 1.0], "nDCG@10", "zscore")
        assert fused_rec["fusion"] == {"method": "zscore", "weight": choice.weight, "grid": [0.0, 0.3, 0.5, 0.7, 1.0]}
        fused = top_k(fuse([bm25, dense], "zscore", choice.weight), 10)
        assert fused_rec["metrics"]["nDCG@10"] == pytest.approx(evaluate_run(fused, qrels, ["nDCG@10"]).mean["nDCG@10"])
        assert fused_rec["metrics"]["nDCG@10"] == pytest.approx(choice.value)
    assert counts["evaluated"] == 5  # BM25, base, base +BM25, human/disj, human/disj +BM25
    assert ExperimentRunner(cfg).run()["evaluated"] == 0  # resumed: nothing redone
    # another fusion is another result (its settings are part of the key)
    other = ExperimentConfig.from_dict({**cfg.to_dict(), "fusion": {"method": "rrf"}})
    assert result_key(other, "base +BM25", 0, "x", "retrieval") != result_key(cfg, "base +BM25", 0, "x", "retrieval")
    assert result_key(other, "base", 0, "x", "retrieval") == result_key(cfg, "base", 0, "x", "retrieval")


def test_teacher_studies_train_with_teacher_scores(tmp_path, tiny_squad, mirror):
    """A study with a teacher (the LLM's judgments, or the first stage's BM25 scores) trains its
    distillation loss with those scores; rows and result records name the teacher."""
    from utilabel.data.registry import load_dataset
    from utilabel.labels.teacher import candidates_teacher, normalize_teacher
    from utilabel.retrieve.bm25 import bm25_candidates

    sf = load_dataset("scifact")
    qids = list(sf.qrels("train"))[:4]
    judgments = tmp_path / "judgments.jsonl"
    cands = {g.query_id: g for g in bm25_candidates(sf, "train", k=4)}
    with open(judgments, "w") as fh:  # pointwise log-odds: the gold passage high, BM25's hits by rank
        for q in qids:
            gold = next(iter(sf.qrels("train")[q]))
            fh.write(json.dumps({"query_id": q, "doc_id": gold, "method": "pointwise", "utility": 1.0, "score": 4.0}) + "\n")
            for c in cands[q].candidates:
                if c.doc_id != gold:
                    fh.write(json.dumps({"query_id": q, "doc_id": c.doc_id, "method": "pointwise", "utility": 0.0,
                                         "score": -float(c.rank)}) + "\n")
    cfg = ExperimentConfig.from_dict({
        "name": "t", "out": str(tmp_path / "exp"),
        "sources": [{"name": "llm", "path": str(judgments), "rule": "top1"}, {"name": "bm25", "kind": "first_stage"}],
        "datasets": [{"name": str(tiny_squad), "max_queries": 4}],
        "studies": [{"name": "kl", "sources": ["llm"], "losses": ["kl"], "teacher": "llm",
                     "train": {"teacher_temperature": 0.5}},
                    {"name": "fs", "sources": ["llm"], "losses": ["disj_kl"], "teacher": "bm25"}],
        "train": {"max_steps": 1, "batch_size": 4, "group_size": 3, "passage_max_len": 16, "query_max_len": 8,
                  "negatives_k": 4},
        "dense": {"max_length": 32, "query_max_length": 16, "k": 10},
    })
    runner = ExperimentRunner(cfg)
    specs = runner.plan()
    assert [s.row for s in specs] == ["llm+teacher(llm)/kl", "llm+teacher(bm25)/disj_kl"]
    assert specs[0].teacher[qids[0]][next(iter(sf.qrels("train")[qids[0]]))] > 1.0  # zscored top
    bm25 = normalize_teacher(candidates_teacher(bm25_candidates(sf, "train", k=4)))
    assert specs[1].teacher == bm25  # the first stage's scores at the hard-negative depth
    assert runner.run()["trained"] == 2
    recs = [r for r in AppendLog.read(tmp_path / "exp" / "results.jsonl") if "+teacher(" in r["row"]]
    assert {(r["row"], r["teacher"]) for r in recs} == {("llm+teacher(llm)/kl", "llm"),
                                                          ("llm+teacher(bm25)/disj_kl", "bm25")}
    summary = json.loads(next((tmp_path / "exp" / "models").glob("*/summary.json")).read_text())
    assert any(line.startswith("teacher scores: given in memory") for line in summary["data"])


def _parity_logprob(messages, cont):
    """A scripted judge: P(yes) = 0.8 for a passage whose text has an even length, else 0.2."""
    passage = messages[-1]["content"].split("\n\n")[0]
    p_yes = 0.8 if len(passage) % 2 == 0 else 0.2
    return math.log(p_yes if cont.lower() == "yes" else 1 - p_yes)


def test_round_study_mines_with_its_model_checks_and_retrains(tmp_path, tiny_squad, mirror):
    """A round study: the round-0 model mines negatives, the run's judge checks the unseen ones (one
    call log, resumable), and two round-1 models retrain on the mined negatives — with the check's
    useful passages as positives, and without the check (the control). A re-run judges and trains nothing."""
    from utilabel.annotate import AnnotateConfig, annotate
    from utilabel.data import beir
    from utilabel.data.candidates import read_candidates
    from utilabel.data.judgments import read_judgments
    from utilabel.data.registry import load_dataset
    from utilabel.llm import get_backend
    from utilabel.retrieve.bm25 import bm25_candidates

    sf = load_dataset("scifact")
    qrels = dict(list(sf.qrels("train").items())[:6])
    gold = {d for v in qrels.values() for d in v}
    train = tmp_path / "train"  # a BEIR folder: 6 SciFact train claims, 60 passages (their gold ones first)
    beir.write_corpus(train / "corpus.jsonl", [sf.corpus[d] for d in gold]
                      + [doc for d, doc in sf.corpus.items() if d not in gold][: 60 - len(gold)])
    beir.write_queries(train / "queries.jsonl", [sf.queries[q] for q in qrels])
    (train / "qrels").mkdir()
    beir.write_qrels_tsv(train / "qrels" / "train.tsv", qrels)
    ds = load_dataset(str(train))
    run = tmp_path / "ann"
    judge = lambda: get_backend("fake", responses=["yes"], cycle=True, logprobs=_parity_logprob)  # noqa: E731
    annotate(bm25_candidates(ds, "train", k=3), ds.corpus, judge(), run,
             AnnotateConfig(method="pointwise", answer_source="none", signals=("yesno",), label_rule="top1"),
             progress=False)
    cfg = ExperimentConfig.from_dict({
        "name": "r", "out": str(tmp_path / "exp"), "train_dataset": str(train), "train_split": "train",
        "sources": [{"name": "llm", "path": str(run / "judgments.jsonl"), "rule": "top1"}],
        "datasets": [{"name": str(tiny_squad), "max_queries": 4}],
        "studies": [{"name": "r", "kind": "round", "sources": ["llm"], "losses": ["disj"],
                     "round": {"top": 2, "rank_hi": 10, "relative_margin": None}},
                    {"name": "d", "kind": "round", "sources": ["llm"], "losses": ["disj"], "tag": "drop",
                     "round": {"top": 2, "rank_hi": 10, "relative_margin": None, "mode": "drop"}}],
        "train": {"max_steps": 1, "batch_size": 4, "group_size": 2, "passage_max_len": 16, "query_max_len": 8},
        "dense": {"max_length": 32, "query_max_length": 16, "k": 10},
    })
    asked = []

    def factory(name, model):
        asked.append((name, model))
        return judge()

    runner = ExperimentRunner(cfg, judge=factory)
    assert [s.row for s in runner.plan()] == ["llm/disj [round 0]", "llm/disj [drop, round 0]"]
    # round 0 (shared by both studies), round 1 and its control; drop mode's round 1 (its control is the same
    # model as the first study's: same labels, same mined negatives)
    assert runner.run()["trained"] == 4
    assert asked == [("fake", "fake")] * 2  # the run's engine and model; the second check replays the first
    rows = {r["row"] for r in AppendLog.read(tmp_path / "exp" / "results.jsonl")}
    assert {"llm/disj [round 0]", "llm/disj [round 1]", "llm/disj [round 1, no check]"} <= rows
    (folder,) = (tmp_path / "exp" / "rounds").iterdir()
    run_pairs = {(j.query_id, j.doc_id) for j in read_judgments(run / "judgments.jsonl")}
    checked = read_judgments(folder / "checked" / "judgments.jsonl")
    mined = {g.query_id: [c.doc_id for c in g.candidates] for g in read_candidates(folder / "mined.jsonl")}
    # per query, the first 2 mined candidates (rank order) the run had not judged
    assert {(j.query_id, j.doc_id) for j in checked} == {
        (q, d) for q, docs in mined.items() for d in [d for d in docs if (q, d) not in run_pairs][:2]}
    # the round-1 labels: the run's top-1 positives plus every checked passage rated ≥ the query's positive
    # the reference, by hand: under top1 a query whose run values are not all equal has one positive, worth
    # its best value; a checked passage rated at least that high is useful (the judge says 0.8 or 0.2)
    values: dict[str, list[float]] = {}
    for j in read_judgments(run / "judgments.jsonl"):
        values.setdefault(j.query_id, []).append(j.utility)
    bar = {q: max(v) for q, v in values.items() if max(v) != min(v)}
    useful_pairs = {(j.query_id, j.doc_id) for j in checked if j.query_id in bar and j.utility >= bar[j.query_id]}
    useful = len(useful_pairs)
    assert useful > 0
    n0 = len(bar)

    def n_positives(row):
        stats = next(r for r in AppendLog.read(tmp_path / "exp" / "models.jsonl") if r["row"] == row)["label_stats"]
        return round(stats["mean_positives"] * stats["queries"])

    assert n_positives("llm/disj [round 0]") == n_positives("llm/disj [round 1, no check]") == n0
    assert n_positives("llm/disj [round 1]") == n0 + useful
    # drop mode: the useful checked passages leave the mined negatives; the labels stay the run's
    dropped = {g.query_id: [c.doc_id for c in g.candidates] for g in read_candidates(folder / "mined-dropped.jsonl")}
    assert dropped == {q: [d for d in docs if (q, d) not in useful_pairs] for q, docs in mined.items()}
    assert n_positives("llm/disj [drop, round 1]") == n0

    def refuse(name, model):
        raise AssertionError("a finished round asks the judge nothing")

    again = ExperimentRunner(cfg, judge=refuse).run()
    assert again["trained"] == 0 and again["evaluated"] == 0


def test_a_human_source_with_a_path_reads_that_qrels_file_and_a_changed_file_retrains(tmp_path, tiny_squad, mirror):
    """A ``human`` source with a ``path`` takes its labels from that TREC qrels file, not from the
    training split's qrels (they were silently read instead once); when the file changes, the row's
    model key changes, and the runner trains and evaluates the row again instead of keeping the result
    another model made."""
    from utilabel.data.registry import load_dataset
    from utilabel.data.trec import format_trec_qrels

    sf = load_dataset("scifact")
    qids = list(sf.qrels("train"))[:4]
    other = list(sf.corpus)[:4]
    qrels_file = tmp_path / "mine.qrels"
    qrels_file.write_text(format_trec_qrels({q: {other[i]: 1} for i, q in enumerate(qids)}))
    cfg = ExperimentConfig.from_dict({
        "name": "h", "out": str(tmp_path / "exp"),
        "sources": [{"name": "mine", "kind": "human", "path": str(qrels_file)}],
        "datasets": [{"name": str(tiny_squad), "max_queries": 4}],
        "studies": [{"name": "s", "sources": ["mine"], "losses": ["disj"], "train_queries": "all"}],
        "train": {"max_steps": 1, "batch_size": 4, "group_size": 2, "passage_max_len": 16, "query_max_len": 8},
        "dense": {"max_length": 32, "query_max_length": 16, "k": 10},
    })
    runner = ExperimentRunner(cfg)
    (spec,) = runner.plan()
    assert spec.labels == {q: {other[i]: 1.0} for i, q in enumerate(qids)}  # the file's, not SciFact's qrels
    assert runner.run()["trained"] == 1
    assert ExperimentRunner(cfg).run() == {"trained": 0, "evaluated": 0, "skipped": 3, "stopped_early": False}

    qrels_file.write_text(format_trec_qrels({q: {other[(i + 1) % 4]: 1} for i, q in enumerate(qids)}))
    events: list[str] = []
    again = ExperimentRunner(cfg, on_event=events.append)
    (new,) = again.plan()
    assert new.key != spec.key
    counts = again.run()
    assert counts["trained"] == 1 and counts["evaluated"] == 1
    assert any("came from another model" in e for e in events)
    recs = [r for r in AppendLog.read(tmp_path / "exp" / "results.jsonl") if r["row"] == "mine/disj"]
    assert [r["model_key"] for r in recs] == [spec.key, new.key]  # the newer record supersedes the old one
