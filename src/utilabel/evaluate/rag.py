"""RAG evaluation: a reader LLM answers each test question from the top-k retrieved passages.

Owns the reader prompt (versioned by :data:`PROMPT_ID`), parsing the reader's reply (a pure
function), the resumable answer log and the aggregate answer metrics of :mod:`.answers`.

Every reader call is logged in an append-only JSONL file keyed by the hash of (request, model) —
the same key as the annotation call log — so re-running an interrupted evaluation only asks the
questions not answered yet, and a re-run with the same retrieval, reader and options asks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.dataset import Dataset
from ..data.trec import sorted_hits
from ..errors import ConfigError
from ..fileio import AppendLog
from ..llm.base import ChatRequest, LLMBackend
from ..records import Document, Query, Run
from ..settings import cache_dir
from .answers import answer_in_passages, best_over_golds, exact_match, rouge_l, token_f1

log = logging.getLogger(__name__)

PROMPT_ID = "rag-answer-v1"
SYSTEM_PROMPT = ("You answer questions using the given passages. Reply with the answer only: a few words, "
                 "no explanation, no full sentence.")
USER_TEMPLATE = "Passages:\n{passages}\n\nQuestion: {question}\nAnswer:"
MEASURES = ("EM", "F1", "ROUGE-L", "AnswerInPassages")


@dataclass(frozen=True)
class RAGConfig:
    """``k`` passages per question, each cut to ``passage_chars`` characters; ``limit`` questions
    (the first of the split that have gold answers); ``max_tokens`` per answer."""

    k: int = 5
    limit: int | None = None
    passage_chars: int = 600
    max_tokens: int = 32

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 100:
            raise ConfigError(f"RAG k must be in [1, 100], got {self.k}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"RAG limit must be ≥ 1, got {self.limit}")
        if self.passage_chars < 20:
            raise ConfigError(f"passage_chars must be ≥ 20, got {self.passage_chars}")
        if not 1 <= self.max_tokens <= 512:
            raise ConfigError(f"max_tokens must be in [1, 512], got {self.max_tokens}")


@dataclass
class RAGResult:
    """Mean metrics, per-query metrics and the reader's answers."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    reader_calls: int = 0

    def format(self) -> str:
        return "\n".join(f"{m}\t{v:.4f}" for m, v in self.mean.items())


def build_request(question: str, passages: list[str], config: RAGConfig) -> ChatRequest:
    """The reader's chat request for one question and its passages (best first)."""
    cut = [p if len(p) <= config.passage_chars else p[:config.passage_chars].rsplit(" ", 1)[0] + " …"
           for p in passages]
    block = "\n".join(f"[{i}] {p}" for i, p in enumerate(cut, start=1)) or "(none)"
    return ChatRequest(messages=({"role": "system", "content": SYSTEM_PROMPT},
                                 {"role": "user", "content": USER_TEMPLATE.format(passages=block, question=question)}),
                       max_tokens=config.max_tokens, temperature=0.0, seed=0, stop=("\n\n",))


def parse_answer(text: str) -> str:
    """The answer in a reader reply: first non-empty line, without an "Answer:" label or quotes."""
    for line in text.strip().splitlines():
        line = line.strip()
        if line:
            break
    else:
        return ""
    low = line.lower()
    for label in ("final answer:", "answer:"):
        if low.startswith(label):
            line = line[len(label):].strip()
            break
    return line.strip().strip("\"'`*").strip()


def top_passages(run: Run, query_id: str, corpus: Mapping[str, Document], k: int) -> list[str]:
    hits = [did for did, _ in sorted_hits(run.get(query_id, {})) if did != query_id and did in corpus]
    return [corpus[did].full_text() for did in hits[:k]]


def rag_queries(dataset: Dataset, split: str, limit: int | None, query_ids: Sequence[str] | None = None) -> dict[str, Query]:
    """Questions of a split (or of ``query_ids``, in that order) that have gold answers (first ``limit``)."""
    pool = dataset.split_queries(split)
    if query_ids is not None:
        pool = {q: pool[q] for q in query_ids if q in pool}
    queries = {qid: q for qid, q in pool.items() if q.answers}
    if not queries:
        raise ConfigError(f"dataset {dataset.name!r} split {split!r} has no questions with gold answers")
    return dict(list(queries.items())[:limit]) if limit is not None else queries


def evaluate_rag(run: Run, dataset: Dataset, split: str, reader: LLMBackend, config: RAGConfig | None = None,
                 log_path: str | Path | None = None, show_progress: bool = False,
                 query_ids: Sequence[str] | None = None) -> RAGResult:
    """Answer the split's questions from ``run``'s top-k passages with ``reader`` and score them.

    ``query_ids`` restricts (and orders) the questions, e.g. to a sample; ``log_path`` (default ``data_home()/rag/<dataset>.jsonl``) is the resumable answer log.
    """
    from tqdm.auto import tqdm

    config = config or RAGConfig()
    queries = rag_queries(dataset, split, config.limit, query_ids)
    log_path = Path(log_path) if log_path else cache_dir("rag") / f"{Path(str(dataset.name)).name}.jsonl"
    done = {rec["key"]: rec["answer_raw"] for rec in AppendLog.read(log_path) if "key" in rec}
    corpus = dataset.corpus
    result = RAGResult(mean={})
    with AppendLog(log_path) as alog:
        for qid, query in tqdm(queries.items(), disable=not show_progress, desc="RAG"):
            passages = top_passages(run, qid, corpus, config.k)
            request = build_request(query.text, passages, config)
            key = request.cache_key(reader.model)
            if key not in done:
                response = reader.chat(request)
                result.reader_calls += 1
                done[key] = response.text
                alog.append({"key": key, "prompt_id": PROMPT_ID, "query_id": qid, "model": reader.model,
                             "answer_raw": response.text, "prompt_tokens": response.prompt_tokens,
                             "completion_tokens": response.completion_tokens, "latency_s": response.latency_s})
            answer = parse_answer(done[key])
            result.answers[qid] = answer
            result.per_query[qid] = {
                "EM": best_over_golds(exact_match, answer, query.answers),
                "F1": best_over_golds(token_f1, answer, query.answers),
                "ROUGE-L": best_over_golds(rouge_l, answer, query.answers),
                "AnswerInPassages": answer_in_passages(passages, query.answers),
            }
    n = len(result.per_query)
    result.mean = {m: sum(v[m] for v in result.per_query.values()) / n for m in MEASURES}
    log.info("RAG on %s/%s: %d questions, %d new reader calls", dataset.name, split, n, result.reader_calls)
    return result
