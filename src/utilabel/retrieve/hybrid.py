"""Hybrid retrieval: fuse two or more runs (``{query_id: {doc_id: score}}``, as
:func:`utilabel.data.trec.read_trec_run` returns) into one, and choose the fusion weight on a dev split.

Two fusions, each returning a run of the same shape over the union of the runs' documents:

* :func:`rrf` — reciprocal-rank fusion (Cormack et al., 2009): ``score(d) = Σ_r 1 / (k + rank_r(d))``,
  ``k = 60`` by default. ``rank_r(d)`` is 1 + the number of the run's documents with a strictly
  higher score, so tied documents get the same rank and the same share (no doc-id tie-break
  leaks into the fused scores). A document a run did not retrieve adds nothing for that run.
* :func:`convex` — ``score(d) = Σ_r w_r · norm_r(d)`` with per-query normalisation ``minmax``
  (``(s - min) / (max - min)``; a query whose scores are all equal maps to 0) or ``zscore``
  (``(s - mean) / std``, population std; all-equal → 0). A document a run did not retrieve gets
  that run's *minimum* normalised score for the query (0 under min-max): ranked as low as the
  run's last hit, never above it. Weights ``w_r ≥ 0`` summing to 1; :func:`first_run_weights`
  turns the usual single weight ``w`` of the first run into ``(w, (1-w)/(n-1), ...)``.

A query missing from some runs is fused over the runs that have it (for :func:`convex` the
missing run adds the same constant, 0, to every document, which does not change the ranking). The
output keeps every fused document; :func:`top_k` cuts each query to ``k`` hits.

Choosing the convex weight on a dev split needs the evaluator, a later stage:
:func:`utilabel.evaluate.fusion.choose_fusion_weight`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import ConfigError, UnknownNameError
from ..records import Run

NORMALIZATIONS = ("minmax", "zscore")


def _check_runs(runs: Sequence[Mapping[str, Mapping[str, float]]]) -> None:
    if len(runs) < 2:
        raise ConfigError(f"fusion needs at least two runs, got {len(runs)}")


def _query_ids(runs) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for qid in run:
            seen.setdefault(qid, None)
    return list(seen)


def competition_ranks(docs: Mapping[str, float]) -> dict[str, int]:
    """1-based rank of each doc: 1 + the number of docs with a strictly higher score (ties share)."""
    ordered = sorted(docs.values(), reverse=True)
    first: dict[float, int] = {}
    for i, s in enumerate(ordered, start=1):
        first.setdefault(s, i)
    return {d: first[s] for d, s in docs.items()}


def rrf(runs: Sequence[Run], k: float = 60.0) -> Run:
    """Reciprocal-rank fusion: ``Σ_r 1/(k + rank_r(d))`` over the runs that retrieved ``d``."""
    _check_runs(runs)
    if not (isinstance(k, int | float) and math.isfinite(k) and k >= 0):
        raise ConfigError(f"RRF k must be a finite number >= 0, got {k!r}")
    fused: Run = {}
    for qid in _query_ids(runs):
        out: dict[str, float] = {}
        for run in runs:
            docs = run.get(qid)
            if not docs:
                continue
            for d, r in competition_ranks(docs).items():
                out[d] = out.get(d, 0.0) + 1.0 / (k + r)
        fused[qid] = out
    return fused


def normalize(docs: Mapping[str, float], method: str = "minmax") -> dict[str, float]:
    """One query's scores normalised by ``minmax`` or ``zscore`` (all-equal scores → 0)."""
    if method not in NORMALIZATIONS:
        raise UnknownNameError("normalisation", method, NORMALIZATIONS)
    if not docs:
        return {}
    values = list(docs.values())
    if method == "minmax":
        lo, hi = min(values), max(values)
        span = hi - lo
        return {d: (s - lo) / span if span > 0 else 0.0 for d, s in docs.items()}
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in values) / len(values))
    return {d: (s - mean) / std if std > 0 else 0.0 for d, s in docs.items()}


def first_run_weights(w: float, n_runs: int) -> tuple[float, ...]:
    """``(w, (1-w)/(n-1), ...)``: weight ``w`` for the first run, the rest shared equally."""
    if not (0.0 <= w <= 1.0):
        raise ConfigError(f"fusion weight w must be in [0, 1], got {w!r}")
    if n_runs < 2:
        raise ConfigError(f"fusion needs at least two runs, got {n_runs}")
    return (w,) + ((1.0 - w) / (n_runs - 1),) * (n_runs - 1)


def convex(runs: Sequence[Run], weights: Sequence[float] | None = None, method: str = "minmax") -> Run:
    """Convex combination ``Σ_r w_r · norm_r(d)`` of per-query normalised scores (default: equal weights)."""
    _check_runs(runs)
    if method not in NORMALIZATIONS:
        raise UnknownNameError("normalisation", method, NORMALIZATIONS)
    weights = tuple(weights) if weights is not None else (1.0 / len(runs),) * len(runs)
    if len(weights) != len(runs):
        raise ConfigError(f"{len(weights)} fusion weights for {len(runs)} runs")
    if any(not math.isfinite(w) or w < 0 for w in weights) or not math.isclose(math.fsum(weights), 1.0, abs_tol=1e-9):
        raise ConfigError(f"fusion weights must be >= 0 and sum to 1, got {list(weights)}")
    fused: Run = {}
    for qid in _query_ids(runs):
        normed = [normalize(run.get(qid) or {}, method) for run in runs]
        union: dict[str, None] = {}
        for docs in normed:
            union.update(dict.fromkeys(docs))
        floor = [min(docs.values()) if docs else 0.0 for docs in normed]
        fused[qid] = {d: math.fsum(w * docs.get(d, lo) for w, docs, lo in zip(weights, normed, floor)) for d in union}
    return fused


def fuse(runs: Sequence[Run], method: str = "rrf", w: float | None = None, rrf_k: float = 60.0) -> Run:
    """``method``: ``rrf`` (``rrf_k``) or a normalisation name for :func:`convex` with first-run weight ``w``
    (``None`` = equal weights)."""
    if method == "rrf":
        if w is not None:
            raise ConfigError("a fusion weight w applies to minmax / zscore fusion, not rrf")
        return rrf(runs, rrf_k)
    if method not in NORMALIZATIONS:
        raise UnknownNameError("fusion method", method, ("rrf",) + NORMALIZATIONS)
    return convex(runs, None if w is None else first_run_weights(w, len(runs)), method)


def top_k(run: Run, k: int) -> Run:
    """Each query's ``k`` best documents (score descending, ties by doc id as the TREC writer orders them)."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    return {q: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]) for q, docs in run.items()}
