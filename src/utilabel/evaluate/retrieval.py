"""Retrieval evaluation: per-query and mean values of trec_eval-defined measures.

A pure-Python implementation checked against pytrec_eval to 1e-9 by the tests, and faster than
calling pytrec_eval on the same run (BENCHMARKS.md): it never sorts a whole ranking when a query
has few relevant documents, it only computes the rank of each relevant document.
Conventions:

* documents are ranked by descending score, ties broken by descending doc id (trec_eval's rule);
* binary measures count grade ≥ ``relevance_level`` as relevant (TREC DL uses 2); nDCG uses the
  grades as gains;
* ``ignore_identical_ids`` drops a retrieved doc whose id equals the query id (BEIR, ArguAna);
* the mean runs over every judged query (qrels), a query missing from the run scoring 0 —
  trec_eval's ``-c``. Per-query values are reported for judged queries only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from ..data.dataset import Dataset
from ..errors import ConfigError
from ..records import Qrels, Run
from .measures import CUTOFF_REQUIRED, DEFAULT_MEASURES, Measure, parse_measure

#: above this many retrieved relevant docs, sorting the ranking beats counting per document
_SORT_THRESHOLD = 12


@dataclass
class EvalResult:
    """Mean value per measure and per-query values (``{query_id: {measure: value}}``)."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)

    def format(self) -> str:
        return "\n".join(f"{m} {v:.4f}" for m, v in self.mean.items())


def _rank_of(doc_id: str, score: float, docs: dict[str, float], scores: list[float]) -> int:
    """1-based rank of ``doc_id`` under (score desc, doc id desc) without sorting."""
    rank = 1 + sum(map(score.__lt__, scores))
    if scores.count(score) > 1:
        rank += sum(1 for d, s in docs.items() if s == score and d > doc_id)
    return rank


def _relevant_ranks(docs: dict[str, float], grades: dict[str, int]) -> list[tuple[int, int]]:
    """``(rank, grade)`` of every retrieved doc with grade > 0, by rank."""
    if len(grades) <= len(docs):
        found = [(d, g) for d, g in grades.items() if g > 0 and d in docs]
    else:
        found = [(d, g) for d in docs if (g := grades.get(d, 0)) > 0]
    if len(found) <= _SORT_THRESHOLD:
        scores = list(docs.values())
        out = [(_rank_of(d, docs[d], docs, scores), g) for d, g in found]
    else:
        if len(set(docs.values())) == len(docs):  # no ties: one sort by score
            items = sorted(docs.items(), key=itemgetter(1), reverse=True)
        else:
            items = sorted(docs.items(), key=itemgetter(0), reverse=True)  # ties: doc id descending
            items.sort(key=itemgetter(1), reverse=True)  # stable: score descending
        out = [(i, grades[d]) for i, (d, _) in enumerate(items, start=1) if grades.get(d, 0) > 0]
    out.sort()
    return out


def evaluate_run(run: Run, qrels: Qrels, measures: Iterable[str | Measure] = DEFAULT_MEASURES,
                 relevance_level: int = 1, ignore_identical_ids: bool = False) -> EvalResult:
    """Evaluate ``run`` against ``qrels``; returns means over judged queries and per-query values."""
    if relevance_level < 1:
        raise ConfigError(f"relevance_level must be ≥ 1, got {relevance_level}")
    ms = [m if isinstance(m, Measure) else parse_measure(m) for m in measures]
    names = [str(m) for m in ms]
    need_ideal = any(m.name == "nDCG" for m in ms)
    max_judged = max((len(d) for d in qrels.values()), default=0)
    max_run = max((len(d) for d in run.values()), default=0)
    disc = [1.0 / math.log2(i + 2) for i in range(max(max_judged, max_run) + 1)]
    per_query: dict[str, dict[str, float]] = {}
    for qid, grades in qrels.items():
        docs = run.get(qid) or {}
        if ignore_identical_ids and qid in docs:
            docs = {d: s for d, s in docs.items() if d != qid}
        hits = _relevant_ranks(docs, grades) if docs else []
        num_rel = sum(1 for g in grades.values() if g >= relevance_level)
        ideal = sorted((g for g in grades.values() if g > 0), reverse=True) if need_ideal else []
        per_query[qid] = {name: _measure(m, hits, ideal, num_rel, relevance_level, disc)
                          for m, name in zip(ms, names)}
    n = len(per_query)
    mean = {name: (math.fsum(v[name] for v in per_query.values()) / n if n else 0.0) for name in names}
    return EvalResult(mean, per_query)


def _measure(m: Measure, hits: list[tuple[int, int]], ideal: list[int], num_rel: int,
             level: int, disc: list[float]) -> float:
    """One measure of one query; ``ideal`` = the query's positive grades, best first (for nDCG)."""
    k = m.cutoff
    if m.name == "nDCG":
        idcg = sum(g * disc[i] for i, g in enumerate(ideal[:k]))
        if idcg <= 0:
            return 0.0
        return sum(g * disc[r - 1] for r, g in hits if k is None or r <= k) / idcg
    if m.name == "RR":
        for r, g in hits:
            if k is not None and r > k:
                break
            if g >= level:
                return 1.0 / r
        return 0.0
    if num_rel == 0:
        return 0.0
    if m.name in CUTOFF_REQUIRED:
        if k is None:  # parse_measure refuses R and P without a cutoff
            raise ValueError(f"{m.name} needs a cutoff")
        found = sum(1 for r, g in hits if g >= level and r <= k)
        return found / (num_rel if m.name == "R" else k)
    total, n = 0.0, 0  # AP
    for r, g in hits:
        if g >= level:
            n += 1
            total += n / r
    return total / num_rel


def evaluate_dataset(run: Run, dataset: Dataset, split: str, measures: Iterable[str | Measure] = DEFAULT_MEASURES) -> EvalResult:
    """Evaluate with the dataset's conventions (relevance level, identical-id removal)."""
    return evaluate_run(run, dataset.qrels(split), measures, relevance_level=dataset.relevance_level,
                        ignore_identical_ids=dataset.ignore_identical_ids)
