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

Scale: the run streams. Queries are built from the candidates as they are scheduled; up to
``workers`` queries are open at once and their calls share ``max_concurrency`` slots, so calls from
many queries are in flight together. A finished query's judgments go to a spool file
(``.judgments.spool``, recomputed by every run) and the in-memory state is a few counters and an
offset per query, so time and memory grow linearly with the number of queries.
``judgments.jsonl`` and ``groups.jsonl`` are written once, in input order, at the end (and when the
run is interrupted or stopped); ``summary.json`` also every ``summary_every_s`` seconds.

Fault isolation: a query whose calls fail on the server (after the backend's retries) is recorded
as failed with the reason (``summary.json`` ``query_errors``) and the run goes on; its logged calls
stay, so a re-run asks the server only for what those queries still miss. ``breaker`` consecutive
server failures stop the run (:class:`~utilabel.errors.LLMError`) after writing what is done.

``shard=(i, n)`` annotates the queries whose stable hash falls in slice ``i`` of ``n``
(:mod:`utilabel.annotate.shards` joins shard folders). ``config.json`` records the settings
(:mod:`utilabel.annotate.runfolder`); a re-run with other settings on the same folder is refused unless
``overwrite=True``.

Files in ``out_dir``: ``calls.jsonl`` (append-only log), ``judgments.jsonl``, ``groups.jsonl``,
``summary.json`` (counts, failures by step and kind, failed queries, tokens, time), ``config.json``.

:func:`estimate` is the ``--dry-run``: it runs the same methods against a counting caller.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import queue
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..data.groups import write_groups
from ..data.judgments import read_judgments
from ..errors import ConfigError, LLMError
from ..fileio import atomic_write
from ..labels import RELEVANCE_METHODS, groups_from_judgments, judgment_labels
from ..llm.base import LLMBackend
from ..records import CandidateGroup, Document, Judgment
from .caller import (
    DEFAULT_GEN_TPS,
    DEFAULT_PROMPT_TPS,
    Caller,
    DryCaller,
    Estimate,
    QueryItem,
    Stats,
    VoteResult,
    approx_tokens,
)
from .config import AnnotateConfig
from .methods import Method, get_method
from .prompts import escape_passage
from .runfolder import claim_folder, run_settings
from .shards import in_shard
from .store import CallStore

log = logging.getLogger(__name__)

def permutation(seed: int, query_id: str, vote: int, n: int) -> list[int]:
    """The seeded shuffle of ``range(n)`` used for one query and vote (stable across processes)."""
    order = list(range(n))
    random.Random(f"{seed}:{query_id}:{vote}").shuffle(order)
    return order


def check_candidates(groups: Sequence[CandidateGroup], corpus: Mapping[str, Document]) -> None:
    """Fail early (before any call) on a duplicated query or a candidate doc missing from the corpus."""
    seen = set()
    for g in groups:
        if g.query_id in seen:
            raise ConfigError(f"query {g.query_id!r} appears twice in the candidates")
        seen.add(g.query_id)
        for c in sorted(g.candidates, key=lambda c: c.rank):
            if c.doc_id not in corpus:
                raise ConfigError(f"query {g.query_id!r}: candidate doc {c.doc_id!r} is not in the corpus")


def _wanted(g: CandidateGroup, answers: Mapping[str, Sequence[str]], needs_answers: bool) -> bool:
    return bool(g.candidates) and (not needs_answers or bool(answers.get(g.query_id)))


def wanted_queries(groups: Sequence[CandidateGroup], answers: Mapping[str, Sequence[str]],
                   config: AnnotateConfig) -> list[str]:
    """The queries a run with ``config`` annotates: those with candidates (and gold answers where the
    method needs them), in input order."""
    needs_answers = get_method(config.method, config).needs_answers
    return [g.query_id for g in groups if _wanted(g, answers, needs_answers)]


def iter_items(groups: Sequence[CandidateGroup], corpus: Mapping[str, Document], config: AnnotateConfig,
               answers: Mapping[str, Sequence[str]] | None = None, needs_answers: bool = False) -> Iterator[QueryItem]:
    """Query items with escaped, truncated passage texts, built lazily (see :func:`check_candidates`).

    The escaped texts of the most recently seen 16,384 passages are cached: popular passages come
    back in many queries' candidates."""
    answers = answers or {}

    @functools.lru_cache(maxsize=16_384)
    def text(doc_id: str) -> str:
        return escape_passage(corpus[doc_id].full_text(), config.max_passage_words, config.sanitize)

    for g in groups:
        if not _wanted(g, answers, needs_answers):
            continue
        first: dict[str, float] = {}
        for c in sorted(g.candidates, key=lambda c: c.rank):
            first.setdefault(c.doc_id, c.score)
        doc_ids = tuple(first)
        texts = tuple(text(d) for d in doc_ids)
        yield QueryItem(g.query_id, " ".join(g.query.split()), doc_ids, texts, tuple(answers.get(g.query_id, ())),
                        tuple(float(first[d]) for d in doc_ids))


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
    """What :func:`annotate` returns: the summary, the run folder and the queries left without labels.

    ``failed_queries`` lists the queries with no label (every vote failed to parse, or a server
    error; the latter are in ``summary["query_errors"]`` with the reason). ``judgments`` reads
    ``judgments.jsonl`` back (the run itself never holds them all in memory).
    """

    summary: dict[str, Any]
    out_dir: Path
    failed_queries: list[str] = field(default_factory=list)

    @property
    def judgments(self) -> list[Judgment]:
        return read_judgments(self.out_dir / "judgments.jsonl")


def positives_count(judgments: Sequence[Judgment], rule: str) -> int:
    """Number of positives of one query's judgments under the label rule."""
    per = judgment_labels(judgments, rule).get(judgments[0].query_id, {})
    return sum(w > 0 for w in per.values())


@dataclass
class _Tally:
    """The run's per-query counters (the summary is built from these, never from all results)."""

    done: int = 0
    labelled: int = 0
    judgments: int = 0
    positives: Counter = field(default_factory=Counter)
    unlabelled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


_JUDGMENT_FIELDS = tuple(f.name for f in fields(Judgment))


def _judgment_lines(judgments: Sequence[Judgment]) -> bytes:
    """The judgments as ``judgments.jsonl`` lines — the same bytes as
    :func:`~utilabel.data.judgments.write_judgments`, without its per-record ``asdict`` copies."""
    return "".join(json.dumps({f: getattr(j, f) for f in _JUDGMENT_FIELDS}, ensure_ascii=False) + "\n"
                   for j in judgments).encode("utf-8")


class _Spool:
    """Finished queries' judgment lines, appended in completion order, read back in input order."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "w+b")  # noqa: SIM115 - lives for the run
        self._at: dict[str, tuple[int, int]] = {}

    def add(self, query_id: str, judgments: Sequence[Judgment]) -> None:
        data = _judgment_lines(judgments)
        self._at[query_id] = (self._fh.seek(0, os.SEEK_END), len(data))
        self._fh.write(data)

    def lines(self, query_id: str) -> bytes:
        where = self._at.get(query_id)
        if where is None:
            return b""
        self._fh.seek(where[0])
        return self._fh.read(where[1])

    def close(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


def _limits(backend: LLMBackend, max_concurrency: int | None, workers: int | None, breaker: int) -> tuple[int, int]:
    """``(max_concurrency, workers)`` with their defaults (see :func:`annotate`), checked."""
    if max_concurrency is None:
        max_concurrency = backend.concurrency
    if max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be ≥ 1, got {max_concurrency}")
    workers = workers if workers is not None else max_concurrency
    if workers < 1:
        raise ConfigError(f"workers must be ≥ 1, got {workers}")
    if breaker < 0:
        raise ConfigError(f"breaker must be ≥ 0, got {breaker}")
    return max_concurrency, workers


def annotate(
    groups: Sequence[CandidateGroup],
    corpus: Mapping[str, Document],
    backend: LLMBackend,
    out_dir: str | Path,
    config: AnnotateConfig | None = None,
    answers: Mapping[str, Sequence[str]] | None = None,
    progress: bool = True,
    max_concurrency: int | None = 1,
    workers: int | None = None,
    breaker: int = 20,
    shard: tuple[int, int] | None = None,
    overwrite: bool = False,
    summary_every_s: float = 30.0,
) -> AnnotationRun:
    """Annotate every candidate group; resumable, streaming (see module docstring).

    ``config``: default :meth:`AnnotateConfig.resolve` for the backend (what ``utilabel annotate`` uses
    with it; :func:`~utilabel.annotate.dataset.annotate_dataset` also takes the dataset's task).
    ``max_concurrency``: backend calls in flight at once (default 1: calls in input order; None: the
    backend's own ``concurrency``; give the backend at least as much); ``workers``: queries open at once (default
    ``max_concurrency``: a query makes one call at a time, and more threads only cost CPU);
    ``breaker``: stop after that many consecutive server failures (0: never); ``shard``: ``(i, n)``
    annotates slice ``i`` of ``n``.
    """
    config = config or AnnotateConfig.resolve(backend.name)
    method = get_method(config.method, config)
    max_concurrency, workers = _limits(backend, max_concurrency, workers, breaker)
    if shard is not None:
        groups = [g for g in groups if in_shard(g.query_id, *shard)]
    check_candidates(groups, corpus)
    answers = answers or {}
    n_items = sum(_wanted(g, answers, method.needs_answers) for g in groups)
    if method.needs_answers and not n_items:
        raise ConfigError(f"method {method.name!r} needs gold answers and no query has one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    claim_folder(out_dir, run_settings(config, method, backend.model_id, shard), overwrite)
    stats, t0 = Stats(), time.perf_counter()
    with CallStore(out_dir / "calls.jsonl") as store:
        run = _Run(method, config, list(groups), out_dir, store, n_items, shard, t0,
                   Caller(backend, store, config, stats, max_concurrency, breaker))
        run.execute(iter_items(groups, corpus, config, answers, method.needs_answers), workers, progress,
                    summary_every_s)
    if run.caller.circuit_open.is_set():
        raise LLMError(f"stopped after {breaker} consecutive server failures (last: {run.caller.last_error}); "
                       f"{run.tally.done}/{n_items} queries done, outputs written to {out_dir}; re-run to continue")
    return AnnotationRun(run.summary, out_dir, run.tally.unlabelled)


class _Run:
    """One :func:`annotate` call at work: schedules queries on a thread pool, records each finished
    query (spool + tally), writes the summary now and then, and the output files at the end."""

    def __init__(self, method: Method, config: AnnotateConfig, groups: list[CandidateGroup], out_dir: Path,
                 store: CallStore, n_items: int, shard: tuple[int, int] | None, t0: float, caller: Caller):
        self.method, self.config, self.groups, self.out_dir = method, config, groups, out_dir
        self.store, self.n_items, self.shard, self.t0, self.caller = store, n_items, shard, t0, caller
        self.model = caller.model
        self.label = "relevance" if method.name in RELEVANCE_METHODS else "utility"
        self.tally = _Tally()
        self.summary: dict[str, Any] = {}
        self.spool: _Spool  # opened by execute()

    def one(self, item: QueryItem) -> tuple[QueryItem, list[Judgment], str | None]:
        """Run every vote of one query (in a worker thread); a server failure is the query's error."""
        method, caller = self.method, self.caller
        try:
            votes = [method.run(item, order, caller, v) for v, order in enumerate(_orders(item, method, self.config))]
        except LLMError as exc:
            return item, [], f"{type(exc).__name__}: {exc}"
        except BaseException:
            caller.stop.set()  # a bug or a bad input: no query starts another call
            raise
        return item, aggregate(item, votes, method.name, self.model, method.prompt_id), None

    def record(self, item: QueryItem, judgments: list[Judgment], error: str | None) -> None:
        """Count a finished query and spool its judgments."""
        tally = self.tally
        tally.done += 1
        if error is not None:
            tally.errors[item.query_id] = error
        if not judgments:
            tally.unlabelled.append(item.query_id)
            return
        self.spool.add(item.query_id, judgments)
        tally.judgments += len(judgments)
        if any(getattr(j, self.label) is not None for j in judgments):
            tally.labelled += 1
            tally.positives[positives_count(judgments, self.config.label_rule)] += 1

    def execute(self, todo: Iterator[QueryItem], workers: int, progress: bool, summary_every_s: float) -> None:
        """Run every query of ``todo``; the output files are written even when interrupted."""
        from tqdm.auto import tqdm

        self.spool = _Spool(self.out_dir / ".judgments.spool")
        bar = tqdm(total=self.n_items, desc=f"annotate {self.method.name}", unit="q", disable=not progress,
                   dynamic_ncols=True)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="annotate")
        complete = False
        try:
            self.schedule(pool, todo, workers, bar, summary_every_s)
            complete = not self.caller.circuit_open.is_set()
        finally:
            self.caller.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            self.finish(complete)
            self.spool.close()

    def schedule(self, pool: ThreadPoolExecutor, todo: Iterator[QueryItem], workers: int, bar,
                 summary_every_s: float) -> None:
        """Keep ``workers + 1`` queries open until ``todo`` is done or the circuit opens."""
        done: queue.SimpleQueue = queue.SimpleQueue()
        open_queries = 0
        last_summary = last_postfix = time.monotonic()
        while True:
            while open_queries < workers + 1 and not self.caller.circuit_open.is_set():
                item = next(todo, None)
                if item is None:
                    break
                pool.submit(self.one, item).add_done_callback(done.put)
                open_queries += 1
            if not open_queries:
                return
            finished = [done.get()]
            while not done.empty():
                finished.append(done.get())
            open_queries -= len(finished)
            for fut in finished:
                self.record(*fut.result())
            bar.update(len(finished))
            now = time.monotonic()
            if now - last_postfix >= 0.5:
                last_postfix = now
                stats, tally = self.caller.stats, self.tally
                bar.set_postfix(fail=stats.total_failures(), failed_q=len(tally.unlabelled), errors=len(tally.errors),
                                new=stats.calls_new, cached=stats.calls_cached, refresh=False)
            if now - last_summary >= summary_every_s:
                last_summary = now
                self.summarize(False)

    def summarize(self, complete: bool) -> dict[str, Any]:
        """Write ``summary.json`` (also while the run goes on) and keep it as :attr:`summary`."""
        self.summary = _summary(self.config, self.model, self.method.prompt_id, self.n_items, self.tally,
                                self.caller.stats, self.label, time.perf_counter() - self.t0, complete,
                                self.store.corrupt_lines, self.shard)
        with atomic_write(self.out_dir / "summary.json") as fh:
            json.dump(self.summary, fh, indent=2)
        return self.summary

    def finish(self, complete: bool) -> dict[str, Any]:
        """Write ``judgments.jsonl`` and ``groups.jsonl`` in input order, then the summary."""
        with atomic_write(self.out_dir / "judgments.jsonl", "wb") as fh:
            for g in self.groups:
                fh.write(self.spool.lines(g.query_id))
        write_groups(self.out_dir / "groups.jsonl", self._training_groups())
        return self.summarize(complete)

    def _training_groups(self) -> Iterator:
        for g in self.groups:
            data = self.spool.lines(g.query_id)
            if data:
                js = [Judgment(**json.loads(x)) for x in data.splitlines()]
                yield from groups_from_judgments(js, [g], self.config.label_rule)


def _summary(config: AnnotateConfig, model: str, prompt_id: str, n_items: int, tally: _Tally, stats: Stats,
             label: str, elapsed: float, complete: bool, corrupt_lines: list[int],
             shard: tuple[int, int] | None) -> dict[str, Any]:
    return {
        "complete": complete,
        "method": config.method,
        "model": model,
        "prompt_id": prompt_id,
        "shard": list(shard) if shard else None,
        "queries": n_items,
        "queries_done": tally.done,
        "queries_labelled": tally.labelled,
        "queries_failed": len(tally.unlabelled),
        "queries_errored": len(tally.errors),
        "query_errors": dict(tally.errors),
        "judgments": tally.judgments,
        "label": label,
        "label_rule": config.label_rule,
        "positives_per_query": dict(sorted(tally.positives.items())),
        "elapsed_s_this_run": round(elapsed, 3),
        **stats.to_dict(),
        "call_log_corrupt_lines": corrupt_lines,
        "config": config.to_dict(),
    }


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
    check_candidates(groups, corpus)
    est = Estimate()
    caller = DryCaller(est, select_fraction, count_tokens, count_text, config.task_spec.values())
    for item in iter_items(groups, corpus, config, answers, method.needs_answers):
        est.queries += 1
        for v, order in enumerate(_orders(item, method, config)):
            method.run(item, order, caller, v)
    return est


def estimate_summary(est: Estimate, prompt_tps: float = DEFAULT_PROMPT_TPS, gen_tps: float = DEFAULT_GEN_TPS,
                     per_call_s: float = 0.0,
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
