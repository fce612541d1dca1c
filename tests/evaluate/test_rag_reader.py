"""RAG evaluation on real SQuAD questions and passages: prompt contents, answer parsing, metric
aggregation and resuming from the answer log. The scripted backend is only used for control flow;
the real local reader runs in the ``llm``-marked test."""

from __future__ import annotations

import pytest

from utilabel.errors import ConfigError
from utilabel.evaluate.rag import RAGConfig, build_request, evaluate_rag, parse_answer
from utilabel.fileio import AppendLog
from utilabel.llm.registry import get_backend


@pytest.fixture(scope="module")
def squad(mirror):
    from utilabel.data.registry import load_dataset

    return load_dataset("squad")


def _gold_run(ds, n):
    """A run that puts each question's judged passage first and another passage second."""
    qs = list(ds.split_queries("test"))[:n]
    other = next(iter(ds.corpus))
    return qs, {q: {**{d: 2.0 for d in ds.qrels("test")[q]}, other: 1.0} for q in qs}


@pytest.mark.parametrize("reply, answer", [
    ("Answer: Denver Broncos\n\nBecause...", "Denver Broncos"),
    ("\n  \"Paris\"  ", "Paris"),
    ("final answer: 1945", "1945"),
    ("", ""),
])
def test_parse_answer(reply, answer):
    assert parse_answer(reply) == answer


def test_prompt_holds_top_k_passages_and_question(squad):
    qs, run = _gold_run(squad, 1)
    req = build_request("Who won?", ["p one", "p two " * 200], RAGConfig(k=2, passage_chars=40))
    user = req.messages[1]["content"]
    assert "[1] p one" in user and "[2] p two" in user and user.rstrip().endswith("Question: Who won?\nAnswer:")
    assert len(user.split("[2] ")[1].split("\n")[0]) <= 42  # cut to 40 chars + " …"


def test_metrics_aggregate_and_log_resumes(squad, tmp_path):
    qs, run = _gold_run(squad, 4)
    golds = [squad.queries[q].answers[0] for q in qs]
    # reader: exact gold for q0, gold + extra word for q1, wrong for q2, gold for q3
    replies = [golds[0], f"{golds[1]} indeed", "zzz qqq", f"Answer: {golds[3]}"]
    fake = get_backend("fake", responses=replies)
    logp = tmp_path / "answers.jsonl"
    res = evaluate_rag(run, squad, "test", fake, RAGConfig(k=2, limit=4), log_path=logp)
    assert res.reader_calls == 4 and len(fake.requests) == 4
    assert [res.per_query[q]["EM"] for q in qs] == [1.0, 0.0, 0.0, 1.0]
    n1 = len(golds[1].split())  # F1 of gold + 1 extra token: P = n/(n+1), R = 1 → 2n/(2n+1) (no articles in the extra)
    assert res.per_query[qs[1]]["F1"] >= 2 * n1 / (2 * n1 + 1) - 1e-9
    assert res.mean["EM"] == pytest.approx(0.5)
    # the gold passage is ranked first, so the answer is in the passages for every SQuAD question
    assert res.mean["AnswerInPassages"] == 1.0
    assert len(AppendLog.read(logp)) == 4
    # resume: a second evaluation asks nothing and gives the same numbers
    again = evaluate_rag(run, squad, "test", get_backend("fake", responses=[]), RAGConfig(k=2, limit=4), log_path=logp)
    assert again.reader_calls == 0 and again.mean == res.mean
    # a different k changes the prompt, so it is a different call
    with pytest.raises(IndexError):
        evaluate_rag(run, squad, "test", get_backend("fake", responses=[]), RAGConfig(k=1, limit=4), log_path=logp)


def test_missing_answers_and_bad_config(mirror):
    from utilabel.data.registry import load_dataset

    with pytest.raises(ConfigError, match="has no questions with gold answers"):
        evaluate_rag({}, load_dataset("scifact"), "test", get_backend("fake", responses=[]))
    with pytest.raises(ConfigError, match="RAG k must be in"):
        RAGConfig(k=0)


@pytest.mark.llm
@pytest.mark.slow
def test_real_local_reader_answers_squad_from_gold_passages(squad, tmp_path):
    from utilabel.llm.registry import backend_names

    if "llamacpp" not in backend_names():
        pytest.skip("llamacpp backend not available")
    qs, run = _gold_run(squad, 5)
    with get_backend("llamacpp", model="qwen2.5-coder-1.5b") as reader:
        res = evaluate_rag(run, squad, "test", reader, RAGConfig(k=1, limit=5), log_path=tmp_path / "a.jsonl")
    # with the gold passage in context a 1.5B reader gets most SQuAD answers partly right
    assert res.mean["F1"] >= 0.4
