"""BM25 first-stage retrieval with ``bm25s`` (Snowball stemming, English stopwords).

:class:`BM25Retriever` indexes a corpus (title + text, as Pyserini's "flat" BEIR indexes do) and
returns runs; :func:`bm25_candidates` turns a dataset split into :class:`CandidateGroup` lists for
annotation (their JSONL file format lives in :mod:`utilabel.data.candidates`); :func:`cached_candidates`
keeps a split's candidates in a file.
Defaults ``k1=0.9, b=0.4`` are Anserini/Pyserini's BM25 defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.candidates import read_candidates, write_candidates
from ..errors import ConfigError
from ..records import Candidate, CandidateGroup, Document, Query, Run


@dataclass(frozen=True)
class BM25Config:
    """BM25 parameters. ``k1`` ≥ 0 saturates term frequency, ``b`` ∈ [0, 1] normalises length."""

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"

    def __post_init__(self):
        if self.k1 < 0:
            raise ConfigError(f"k1 must be ≥ 0, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ConfigError(f"b must be in [0, 1], got {self.b}")


class BM25Retriever:
    """A bm25s index over a corpus; ``search`` returns a :data:`Run`."""

    def __init__(self, corpus: Mapping[str, Document], config: BM25Config | None = None, show_progress: bool = False):
        import bm25s
        from bm25s.tokenization import Tokenizer

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG itself

        if not corpus:
            raise ConfigError("cannot index an empty corpus")
        self.config = config or BM25Config()
        stemmer = None
        if self.config.stemmer:
            import Stemmer

            stemmer = Stemmer.Stemmer(self.config.stemmer)
        self.doc_ids = list(corpus)
        self._tokenizer = Tokenizer(stopwords=self.config.stopwords or [], stemmer=stemmer)
        tokens = self._tokenizer.tokenize([corpus[d].full_text() for d in self.doc_ids], show_progress=show_progress,
                                          return_as="tuple")
        self._model = bm25s.BM25(k1=self.config.k1, b=self.config.b, method=self.config.method)
        self._model.index(tokens, show_progress=show_progress)
        self.show_progress = show_progress

    def search(self, queries: Mapping[str, Query], k: int = 100) -> Run:
        """Top-``k`` documents per query (queries with no known term get an empty ranking)."""
        if k < 1:
            raise ConfigError(f"k must be ≥ 1, got {k}")
        k = min(k, len(self.doc_ids))
        qids = list(queries)
        if not qids:
            return {}
        ids = self._tokenizer.tokenize([queries[q].text for q in qids], update_vocab=False,
                                       show_progress=False, return_as="ids")
        vocab_inv = {v: t for t, v in self._tokenizer.get_vocab_dict().items()}
        token_lists = [[vocab_inv[i] for i in row] for row in ids]
        run: Run = {qid: {} for qid in qids}
        nonempty = [i for i, t in enumerate(token_lists) if t]
        if not nonempty:
            return run
        docs, scores = self._model.retrieve([token_lists[i] for i in nonempty], k=k,
                                            show_progress=self.show_progress, n_threads=1)
        for row, i in enumerate(nonempty):
            hits = run[qids[i]]
            for j, s in zip(docs[row], scores[row]):
                if s > 0:
                    hits[self.doc_ids[int(j)]] = float(np.float32(s))
        return run


def bm25_candidates(dataset, split: str, k: int = 20, config: BM25Config | None = None,
                    limit: int | None = None, retriever: BM25Retriever | None = None) -> list[CandidateGroup]:
    """BM25 top-``k`` candidates for the queries of ``dataset``'s ``split`` (first ``limit`` queries)."""
    queries = dataset.split_queries(split)
    if limit is not None:
        queries = dict(list(queries.items())[:limit])
    retriever = retriever or BM25Retriever(dataset.corpus, config)
    run = retriever.search(queries, k=k + (1 if dataset.ignore_identical_ids else 0))
    groups = []
    for qid, query in queries.items():
        hits = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))
        if dataset.ignore_identical_ids:
            hits = [h for h in hits if h[0] != qid]
        cands = tuple(Candidate(did, r, s) for r, (did, s) in enumerate(hits[:k], start=1))
        groups.append(CandidateGroup(qid, query.text, cands))
    return groups


def cached_candidates(dataset, split: str, k: int, path: str | Path, write: bool = True) -> dict[str, list[str]]:
    """BM25 top-``k`` doc ids per query of ``split``, read from ``path`` when it exists, else retrieved
    (and written there when ``write``): the hard-negative pool of the trainer and the experiment runner."""
    path = Path(path)
    if path.exists():
        groups = read_candidates(path)
    else:
        groups = bm25_candidates(dataset, split, k=k)
        if write:
            write_candidates(path, groups)
    return {g.query_id: [c.doc_id for c in g.candidates] for g in groups}


def run_from_candidates(groups: list[CandidateGroup]) -> Run:
    return {g.query_id: {c.doc_id: c.score for c in g.candidates} for g in groups}
