"""The annotation run: candidates in, judgments and training groups out, resumable at any point.

:func:`annotate` turns :class:`~utilabel.records.CandidateGroup` lists into
:class:`~utilabel.records.Judgment` records with one registered method (see
:mod:`utilabel.annotate.methods`). For each query it shuffles the candidates with a seed
(listwise position bias), runs the method once per vote (k-permutation voting), maps passage
numbers back to doc ids and aggregates the votes into labels (fraction of successful runs
selecting each passage). Every LLM call goes through the :class:`~utilabel.annotate.store.CallStore`
in ``out_dir/calls.jsonl``: a re-run replays logged calls and makes only the missing ones, so
killing the process at any point and running again gives exactly the labels of an uninterrupted
run (labels are recomputed from the logged outputs, never stored half-way).

Files in ``out_dir``: ``calls.jsonl`` (append-only log), ``judgments.jsonl`` and
``groups.jsonl`` (atomic rewrites after every query), ``summary.json`` (counts, failures by step and kind, tokens,
time), ``config.json``.

:func:`estimate` is the ``--dry-run``: it runs the same methods against a counting caller.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.groups import write_groups
from ..errors import ConfigError
from ..fileio import atomic_write
from ..labels import judgment_labels
from ..records import CandidateGroup, Document, Judgment
from .core import AnnotateConfig, Caller, DryCaller, Estimate, QueryItem, Stats, VoteResult, approx_tokens
from .labels import groups_from_judgments, write_judgments
from .methods import Method, get_method
from .prompts import escape_passage
from .store import CallStore

log = logging.getLogger(__name__)


def permutation(seed: int, query_id: str, vote: int, n: int) -> list[int]:
    """The seeded shuffle of ``range(n)`` used for one query and vote (stable across processes)."""
    order = list(range(n))
    random.Random(f"{seed}:{query_id}:{vote}").shuffle(order)
    return order


def build_items(groups: Sequence[CandidateGroup], corpus: Mapping[str, Document], config: AnnotateConfig,
                answers: Mapping[str, Sequence[str]] | None = None) -> list[QueryItem]:
    """Query items with escaped, truncated passage texts; validates ids and duplicates."""
    items, seen = [], set()
    for g in groups:
        if g.query_id in seen:
            raise ConfigError(f"query {g.query_id!r} appears twice in the candidates")
        seen.add(g.query_id)
        if not g.candidates:
            continue
        first = {}
        for c in sorted(g.candidates, key=lambda c: c.rank):
            first.setdefault(c.doc_id, c.score)
        doc_ids = tuple(first)
        missing = [d for d in doc_ids if d not in corpus]
        if missing:
            raise ConfigError(f"query {g.query_id!r}: candidate doc {missing[0]!r} is not in the corpus")
        texts = tuple(escape_passage(corpus[d].full_text(), config.max_passage_words, config.sanitize) for d in doc_ids)
        ans = tuple((answers or {}).get(g.query_id, ()))
        items.append(QueryItem(g.query_id, " ".join(g.query.split()), doc_ids, texts, ans,
                               tuple(float(first[d]) for d in doc_ids)))
    return items


def _orders(item: QueryItem, method: Method, config: AnnotateConfig) -> list[list[int]]:
    n = len(item.doc_ids)
    votes = config.votes if method.listwise else 1
    if not config.shuffle:
        return [list(range(n))] * votes
    return [permutation(config.seed, item.query_id, v, n) for v in range(votes)]


def _mean(maps: list[dict[int, float]], n: int) -> dict[int, float] | None:
    if not maps:
        return None
    return {i: sum(m[i] for m in maps) / len(maps) for i in range(n)}


def aggregate(item: QueryItem, results: Sequence[VoteResult], method: str, model: str, prompt_id: str) -> list[Judgment]:
    """Judgments of one query from its votes: label = mean over the votes whose step succeeded.

    For binary selections the mean is the fraction of runs selecting the passage. ``relevance`` is
    reported as 0/1 (majority); ``rank`` is the single vote's rank, or the rank by mean score.
    No judgment is written for a query whose every vote failed.
    """
    n = len(item.doc_ids)
    rel = _mean([r.relevance for r in results if r.relevance is not None], n)
    util = _mean([r.utility for r in results if r.utility is not None], n)
    score = _mean([r.score for r in results if r.score is not None], n)
    ranked = [r for r in results if r.rank is not None]
    rank: dict[int, int] | None = None
    if len(ranked) == 1:
        rank = ranked[0].rank
    elif ranked and score is not None:
        rank = {i: k for k, i in enumerate(sorted(range(n), key=lambda i: (-score[i], i)), 1)}
    if rel is None and util is None:
        return []
    out = []
    for i, doc_id in enumerate(item.doc_ids):
        out.append(Judgment(
            query_id=item.query_id,
            doc_id=doc_id,
            method=method,
            relevance=None if rel is None else int(rel[i] >= 0.5),
            utility=None if util is None else util[i],
            rank=None if rank is None else rank[i],
            score=None if score is None else score[i],
            model=model,
            prompt_id=prompt_id,
        ))
    return out


@dataclass
class AnnotationRun:
    """What :func:`annotate` returns: the judgments, training groups and the run summary."""

    judgments: list[Judgment]
    summary: dict[str, Any]
    out_dir: Path
    failed_queries: list[str] = field(default_factory=list)


def _label_name(method: Method) -> str:
    return "relevance" if method.name == "relsel" else "utility"


def annotate(
    groups: Sequence[CandidateGroup],
    corpus: Mapping[str, Document],
    backend,
    out_dir: str | Path,
    config: AnnotateConfig | None = None,
    answers: Mapping[str, Sequence[str]] | None = None,
    progress: bool = True,
    workers: int = 1,
    checkpoint_every: int = 1,
) -> AnnotationRun:
    """Annotate every candidate group; resumable (see module docstring). Returns the run."""
    config = config or AnnotateConfig()
    method = get_method(config.method, config)
    if workers < 1:
        raise ConfigError(f"workers must be ≥ 1, got {workers}")
    items = build_items(groups, corpus, config, answers)
    if method.needs_answers:
        items = [it for it in items if it.answers]
        if not items:
            raise ConfigError(f"method {method.name!r} needs gold answers and no query has one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = getattr(backend, "model", "") or getattr(backend, "name", "")
    prompt_id = method.prompt_id
    with atomic_write(out_dir / "config.json") as fh:
        json.dump({"config": config.to_dict(), "model": model, "prompt_id": prompt_id,
                   "prompt_hashes": {p.ref: p.hash for p in method.prompts()}}, fh, indent=2)
    stats = Stats()
    results: dict[str, list[Judgment]] = {}
    failed: list[str] = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    label = _label_name(method)

    def flush(final: bool) -> None:
        done = [j for it in items if it.query_id in results for j in results[it.query_id]]
        write_judgments(out_dir / "judgments.jsonl", done)
        write_groups(out_dir / "groups.jsonl", groups_from_judgments(done, groups, config.label_rule))
        _write_summary(out_dir, config, model, prompt_id, items, results, failed, stats, time.perf_counter() - t0,
                       label, complete=final)

    with CallStore(out_dir / "calls.jsonl") as store:
        caller = Caller(backend, store, config, stats)

        def one(item: QueryItem) -> tuple[QueryItem, list[Judgment]]:
            votes = [method.run(item, order, caller, v) for v, order in enumerate(_orders(item, method, config))]
            return item, aggregate(item, votes, method.name, model, prompt_id)

        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency
            tqdm = None
        bar = tqdm(total=len(items), desc=f"annotate {method.name}", unit="q", disable=not progress or tqdm is None,
                   dynamic_ncols=True) if tqdm else None
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        try:
            it = pool.map(one, items) if pool else map(one, items)
            for n_done, (item, judgments) in enumerate(it, 1):
                with lock:
                    results[item.query_id] = judgments
                    if not judgments:
                        failed.append(item.query_id)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(fail=stats.total_failures(), failed_q=len(failed), new=stats.calls_new,
                                    cached=stats.calls_cached, refresh=False)
                if checkpoint_every and n_done % checkpoint_every == 0 and n_done < len(items):
                    flush(final=False)
        finally:
            if pool:
                pool.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()
        flush(final=True)
    done = [j for it in items for j in results.get(it.query_id, [])]
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    return AnnotationRun(done, summary, out_dir, failed)


def positives_histogram(results: Mapping[str, list[Judgment]], rule: str) -> dict[int, int]:
    """Number of queries with 0, 1, 2, ... positives under the label rule."""
    labels = judgment_labels([j for js in results.values() for j in js], rule)
    return dict(sorted(Counter(sum(w > 0 for w in per.values()) for per in labels.values()).items()))


def _write_summary(out_dir: Path, config, model, prompt_id, items, results, failed, stats: Stats, elapsed, label,
                   complete: bool) -> None:
    summary = {
        "complete": complete,
        "method": config.method,
        "model": model,
        "prompt_id": prompt_id,
        "queries": len(items),
        "queries_done": len(results),
        "queries_labelled": sum(1 for js in results.values() if any(getattr(j, label) is not None for j in js)),
        "queries_failed": len(failed),
        "judgments": sum(len(js) for js in results.values()),
        "label": label,
        "label_rule": config.label_rule,
        "positives_per_query": positives_histogram(results, config.label_rule),
        "elapsed_s_this_run": round(elapsed, 3),
        **stats.to_dict(),
        "config": config.to_dict(),
    }
    with atomic_write(out_dir / "summary.json") as fh:
        json.dump(summary, fh, indent=2, sort_keys=False)


def estimate(
    groups: Sequence[CandidateGroup],
    corpus: Mapping[str, Document],
    config: AnnotateConfig | None = None,
    answers: Mapping[str, Sequence[str]] | None = None,
    count_tokens: Callable[[Sequence[dict[str, str]]], int] = approx_tokens,
    count_text: Callable[[str], int] | None = None,
    select_fraction: float = 0.4,
) -> Estimate:
    """Calls and tokens the run would need (without retries), by rendering every prompt.

    Selections are assumed to pick ``select_fraction`` of the passages (answers 40 words).
    """
    config = config or AnnotateConfig()
    method = get_method(config.method, config)
    items = build_items(groups, corpus, config, answers)
    if method.needs_answers:
        items = [it for it in items if it.answers]
    est = Estimate(queries=len(items))
    caller = DryCaller(est, select_fraction, count_tokens, count_text, config.task_spec.values())
    for item in items:
        for v, order in enumerate(_orders(item, method, config)):
            method.run(item, order, caller, v)
    return est


def estimate_summary(est: Estimate, prompt_tps: float, gen_tps: float, per_call_s: float = 0.0,
                     usd_per_m_prompt: float = 0.0, usd_per_m_completion: float = 0.0) -> dict[str, Any]:
    """The dry-run report as a dict (calls, tokens, seconds, cost)."""
    seconds = est.seconds(prompt_tps, gen_tps, per_call_s)
    return {
        "queries": est.queries,
        "calls": est.calls,
        "prompt_tokens": est.prompt_tokens,
        "completion_tokens": est.completion_tokens,
        "by_step": est.by_step,
        "estimated_seconds": round(seconds, 1),
        "seconds_per_query": round(seconds / est.queries, 2) if est.queries else math.nan,
        "estimated_cost_usd": round(est.cost(usd_per_m_prompt, usd_per_m_completion), 4),
        "assumptions": {"prompt_tokens_per_s": prompt_tps, "completion_tokens_per_s": gen_tps,
                        "seconds_per_call": per_call_s},
    }
