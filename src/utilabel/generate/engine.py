"""Query generation: a corpus in, a BEIR training folder of LLM-written queries out, resumable.

:func:`generate` samples source passages (:mod:`.sampling`), asks the LLM for
``queries_per_passage`` queries per passage — zero-shot from the task's wording, or few-shot from up
to eight of the user's own (passage, query) examples (Promptagator) — through the annotation
machinery: the logging, replaying, retrying :class:`~utilabel.annotate.caller.Caller` over a
:class:`~utilabel.annotate.store.CallStore` in ``out_dir/calls.jsonl``. Killing the process at any
point and running again replays the logged calls and makes only the missing ones, so the folder is
the one an uninterrupted run writes (every output file is recomputed from the log and written
atomically at the end).

The generated queries are then filtered (:mod:`.filters`): text filters (length, a copied passage
sentence, exact and near duplicates), the BM25 round trip (the source passage must be in the top
``round_trip_k`` for its query; :mod:`utilabel.retrieve.bm25`) and, optionally, the pointwise judge
(P(useful) of the source passage ≥ ``judge_threshold``; an annotation run in ``out_dir/judge/``
with its own call log). Each dropped query keeps its reason.

Files in ``out_dir``: ``corpus.jsonl`` (a copy of the source corpus), ``queries.jsonl`` (kept
queries, ``metadata.source_doc``), ``qrels/train.tsv`` (the source passage of each query, relevance 1),
``utilabel.json`` (name, task), ``generations.jsonl`` (every generated query with ``kept``,
``reason``, ``bm25_rank``, ``judge_utility``), ``summary.json``, ``config.json``, ``calls.jsonl``.
The folder is a dataset: ``utilabel retrieve bm25 / annotate / train --dataset OUT_DIR`` read it.

:func:`estimate_generation` is the ``--dry-run``: calls and tokens by rendering every prompt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..annotate.caller import CallContext, Caller, DryCaller, Estimate, Stats, approx_tokens
from ..annotate.config import AnnotateConfig
from ..annotate.engine import annotate, estimate
from ..annotate.parsing import Parsed
from ..annotate.prompts import Prompt, escape_passage, load_prompt_file
from ..annotate.runfolder import claim_folder
from ..annotate.store import CallStore
from ..annotate.tasks import DEFAULT_TASK, GENERATION_PROMPTS, Task, resolve_task
from ..data import beir
from ..data.dataset import Dataset, write_meta
from ..errors import ConfigError, LLMError
from ..fileio import atomic_write
from ..llm.base import LLMBackend
from ..records import Candidate, CandidateGroup, Document, Query
from .filters import count_reasons, parse_queries, text_filter
from .sampling import STRATIFY, Example, render_examples, sample_passages

log = logging.getLogger(__name__)

#: completion tokens allowed per requested query (a long claim is ~30 tokens) plus a fixed allowance
TOKENS_PER_QUERY = 48
SPLIT = "train"


@dataclass
class GenerateConfig:
    """Options of a generation run (all recorded in ``config.json``; a folder holds one setting).

    passages: how many source passages (None: every passage of ``min_passage_words``+ words).
    stratify: ``none`` (a seeded sample) or ``length`` (equal shares of four length bins).
    queries_per_passage: queries asked for in each call (before filtering).
    task / task_instruction: what a query is for (``qa``, ``claim``, ``counter-argument``, or your own
        yes/no question: task ``custom``); the prompts are worded by it.
    max_passage_words: the source passage (and each example passage) is cut to this many words.
    temperature, seed, retries: of every call (a retry, after an empty reply, uses ``seed + attempt``).
    min_words / max_words: the length filter; near_duplicate: token Jaccard at which a query of the
        same passage counts as a repeat (1: off).
    round_trip_k: keep a query only when its source passage is in BM25's top-k for it (0: off). 100: on
        SciFact, 86% of the human train claims have a gold passage in BM25's top 20 and 93% in the top 100
        (benchmarks/bench_generate.py), so a tight k would drop good non-lexical queries; at 100 the
        filter catches queries unrelated to their passage.
    judge / judge_threshold: also ask the pointwise judge P(useful) of the source passage and keep the
        query only when it reaches the threshold (costs one scoring call per query left).
    """

    passages: int | None = None
    stratify: str = "none"
    min_passage_words: int = 8
    queries_per_passage: int = 2
    task: str = DEFAULT_TASK
    task_instruction: str | None = None
    max_passage_words: int = 200
    temperature: float = 0.0
    seed: int = 0
    retries: int = 1
    min_words: int = 3
    max_words: int = 40
    near_duplicate: float = 0.8
    round_trip_k: int = 100
    judge: bool = False
    judge_threshold: float = 0.5
    extra_tokens: int = 0
    sanitize: bool = True

    def __post_init__(self):
        if self.passages is not None and self.passages < 1:
            raise ConfigError(f"passages must be ≥ 1, got {self.passages}")
        if self.stratify not in STRATIFY:
            raise ConfigError(f"stratify must be one of {', '.join(STRATIFY)}, got {self.stratify!r}")
        if not 1 <= self.queries_per_passage <= 20:
            raise ConfigError(f"queries_per_passage must be in 1..20, got {self.queries_per_passage}")
        if not 1 <= self.min_words <= self.max_words:
            raise ConfigError(f"need 1 ≤ min_words ≤ max_words, got {self.min_words} and {self.max_words}")
        if not 0 < self.near_duplicate <= 1:
            raise ConfigError(f"near_duplicate must be in (0, 1], got {self.near_duplicate}")
        if self.round_trip_k < 0:
            raise ConfigError(f"round_trip_k must be ≥ 0, got {self.round_trip_k}")
        if not 0 <= self.judge_threshold <= 1:
            raise ConfigError(f"judge_threshold must be in [0, 1], got {self.judge_threshold}")
        if self.max_passage_words < 8 or self.min_passage_words < 1:
            raise ConfigError("max_passage_words must be ≥ 8 and min_passage_words ≥ 1")
        self.annotate_config()  # temperature, retries, task checked by the annotation config

    @property
    def task_spec(self) -> Task:
        return resolve_task(self.task, self.task_instruction)

    def annotate_config(self) -> AnnotateConfig:
        """The settings the shared :class:`Caller` reads (seed, retries, temperature, task texts)."""
        return AnnotateConfig(seed=self.seed, retries=self.retries, temperature=self.temperature,
                              task=self.task, task_instruction=self.task_instruction, extra_tokens=self.extra_tokens,
                              max_passage_words=self.max_passage_words, sanitize=self.sanitize)

    def judge_config(self, backend: str) -> AnnotateConfig:
        """The pointwise judge of the source passage: P(yes) to the task's question, no pseudo-answer."""
        return AnnotateConfig.resolve(backend, method="pointwise", answer_source="none", signals=("yesno",),
                                      task=self.task, task_instruction=self.task_instruction,
                                      max_passage_words=self.max_passage_words, seed=self.seed,
                                      extra_tokens=self.extra_tokens, label_rule="threshold:0.5")

    def max_tokens(self) -> int:
        return TOKENS_PER_QUERY * self.queries_per_passage + 16

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def generation_prompt(kind: str) -> Prompt:
    """The built-in prompt ``zeroshot``, ``rebutted`` or ``fewshot`` (``generate/prompts/<kind>.compact.yaml``)."""
    kinds = (*GENERATION_PROMPTS, "fewshot")
    if kind not in kinds:
        raise ConfigError(f"prompt kind must be one of {', '.join(kinds)}, got {kind!r}")
    with resources.as_file(resources.files("utilabel.generate") / "prompts" / f"{kind}.compact.yaml") as real:
        return load_prompt_file(str(real))


@dataclass
class GenerationRun:
    """What :func:`generate` returns: the summary and the folder (a BEIR dataset with a train split)."""

    summary: dict[str, Any]
    out_dir: Path

    @property
    def dataset(self) -> Dataset:
        return Dataset.from_folder(self.out_dir)


@dataclass
class _Generated:
    query_id: str
    source_doc: str
    text: str
    reason: str | None = None
    bm25_rank: int | None = None
    judge_utility: float | None = None

    def record(self) -> dict[str, Any]:
        return {"query_id": self.query_id, "source_doc": self.source_doc, "text": self.text,
                "kept": self.reason is None, "reason": self.reason, "bm25_rank": self.bm25_rank,
                "judge_utility": self.judge_utility}


class _Prompter:
    """Renders the values of one passage's call (the prompt, its placeholders, the parser)."""

    def __init__(self, config: GenerateConfig, examples: Sequence[Example]):
        self.config = config
        self.task = config.task_spec
        self.prompt = generation_prompt("fewshot" if examples else self.task.generation)
        self.examples = (render_examples(examples, self.task.query_label, config.max_passage_words, config.sanitize)
                         if examples else None)

    def values(self, doc: Document) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.config.queries_per_passage,
                               "passage": escape_passage(doc.full_text(), self.config.max_passage_words,
                                                         self.config.sanitize)}
        if self.examples is not None:
            out["examples"] = self.examples
        return out

    def parse(self, text: str) -> Parsed:
        return parse_queries(text, self.config.queries_per_passage, self.task.query_label)


def query_id(doc_id: str, j: int) -> str:
    """The id of the ``j``-th query generated for ``doc_id`` (stable whatever the filters drop)."""
    return f"gen-{doc_id}-{j}"


def generate(
    dataset: Dataset,
    backend: LLMBackend,
    out_dir: str | Path,
    config: GenerateConfig | None = None,
    examples: Sequence[Example] = (),
    progress: bool = True,
    max_concurrency: int | None = 1,
    breaker: int = 20,
    overwrite: bool = False,
) -> GenerationRun:
    """Generate, filter and write a training folder (see module docstring).

    ``max_concurrency``: calls in flight (None: the backend's own ``concurrency``); ``breaker``: stop
    after that many consecutive server failures (0: never); ``overwrite``: replace a run with other
    settings in ``out_dir`` (its call log is kept and reused).
    """
    config = config or GenerateConfig()
    out_dir = Path(out_dir)
    max_concurrency = _check_options(dataset, backend, out_dir, config, max_concurrency)
    corpus = dataset.corpus
    prompter = _Prompter(config, examples)
    sources = sample_passages(corpus, config.passages, config.seed, config.stratify, min_words=config.min_passage_words,
                              exclude=[e.doc_id for e in examples if e.doc_id])
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"config": config.to_dict(), "model": backend.model_id, "prompt_id": prompter.prompt.ref,
                "prompt_hash": prompter.prompt.hash, "source": str(dataset.path),
                "examples": [asdict(e) for e in examples]}
    claim_folder(out_dir, settings, overwrite)
    t0 = time.perf_counter()
    stats = Stats()
    with CallStore(out_dir / "calls.jsonl") as store:
        caller = Caller(backend, store, config.annotate_config(), stats, max_concurrency, breaker)
        replies, errors = _ask_all(caller, prompter, corpus, sources, max_concurrency, progress)
    generated, failed = _filtered(sources, replies, corpus, config)
    if config.round_trip_k:
        _round_trip(generated, corpus, config.round_trip_k)
    judge_summary = None
    if config.judge:
        judge_summary = _judge(generated, corpus, backend, out_dir / "judge", config, progress, max_concurrency,
                               overwrite)
    summary = _summary(config, backend.model_id, prompter.prompt.ref, sources, failed, errors, generated, stats,
                       time.perf_counter() - t0, judge_summary, len(examples), store.corrupt_lines)
    _write_folder(out_dir, dataset, config, generated, summary)
    if caller.circuit_open.is_set():
        raise LLMError(f"stopped after {breaker} consecutive server failures (last: {caller.last_error}); "
                       f"outputs written to {out_dir}; re-run to continue")
    return GenerationRun(summary, out_dir)


def _check_options(dataset: Dataset, backend: LLMBackend, out_dir: Path, config: GenerateConfig,
                   max_concurrency: int | None) -> int:
    """The calls in flight to use; a one-line error for an output folder, backend or concurrency that cannot work."""
    if out_dir.resolve() == Path(dataset.path).resolve():
        raise ConfigError("--out must be a new folder, not the source dataset's")
    if config.judge and not backend.supports_logprob:
        raise ConfigError(f"the judge filter scores with log-probabilities; backend {backend.name!r} has none "
                          "(use llamacpp, transformers, vllm or a server with logprobs)")
    max_concurrency = max_concurrency or backend.concurrency
    if max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be ≥ 1, got {max_concurrency}")
    return max_concurrency


def _filtered(sources: Sequence[str], replies: dict[str, list[str] | None], corpus: dict[str, Document],
              config: GenerateConfig) -> tuple[list[_Generated], list[str]]:
    """Every parsed query with the text filters' verdict, in source order, and the passages whose
    replies never parsed."""
    generated: list[_Generated] = []
    seen: set[str] = set()
    failed = []
    for d in sources:
        texts = replies.get(d)
        if texts is None:
            failed.append(d)
            continue
        reasons = text_filter(texts, corpus[d].full_text(), seen, config.min_words, config.max_words,
                              config.near_duplicate)
        generated += [_Generated(query_id(d, j), d, t, r) for j, (t, r) in enumerate(zip(texts, reasons, strict=True))]
    return generated, failed


def _ask_all(caller: Caller, prompter: _Prompter, corpus: dict[str, Document], sources: Sequence[str],
             workers: int, progress: bool) -> tuple[dict[str, list[str] | None], dict[str, str]]:
    """Every source passage's parsed queries (None: every attempt failed to parse), and server errors."""
    from tqdm.auto import tqdm

    config = prompter.config
    replies: dict[str, list[str] | None] = {}
    errors: dict[str, str] = {}

    def one(doc_id: str) -> tuple[str, list[str] | None, str | None]:
        try:
            parsed = caller.chat(prompter.prompt, prompter.values(corpus[doc_id]), prompter.parse, config.max_tokens(),
                                 CallContext(doc_id, "generate", "generate"))
        except LLMError as exc:
            return doc_id, None, f"{type(exc).__name__}: {exc}"
        return doc_id, (parsed.value if parsed.ok else None), None

    bar = tqdm(total=len(sources), desc="generate", unit="passage", disable=not progress, dynamic_ncols=True)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="generate")
    try:
        futures = [pool.submit(one, d) for d in sources]
        for fut in as_completed(futures):
            doc_id, texts, error = fut.result()
            replies[doc_id] = texts
            if error is not None:
                errors[doc_id] = error
            bar.update(1)
            bar.set_postfix(new=caller.stats.calls_new, cached=caller.stats.calls_cached, errors=len(errors),
                            refresh=False)
    finally:
        caller.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return replies, errors


def _round_trip(generated: list[_Generated], corpus: dict[str, Document], k: int) -> None:
    """Set each query's ``bm25_rank`` (of its source passage; None: not in the top ``k``) and drop the
    kept ones whose source passage is not in the top ``k``."""
    from ..retrieve.bm25 import BM25Retriever

    todo = [g for g in generated if g.reason is None]
    if not todo:
        return
    run = BM25Retriever(corpus).search({g.query_id: Query(g.query_id, g.text) for g in todo}, k=k)
    for g in todo:
        ranked = [d for d, _ in sorted(run[g.query_id].items(), key=lambda kv: (-kv[1], kv[0]))]
        g.bm25_rank = ranked.index(g.source_doc) + 1 if g.source_doc in ranked else None
        if g.bm25_rank is None:
            g.reason = "round_trip"


def _judge(generated: list[_Generated], corpus: dict[str, Document], backend: LLMBackend, judge_dir: Path,
           config: GenerateConfig, progress: bool, max_concurrency: int, overwrite: bool) -> dict[str, Any]:
    """Judge each kept query's source passage (an annotation run in ``judge_dir``); drop those below
    the threshold (``judge``) or left without a label (``judge_failed``)."""
    todo = [g for g in generated if g.reason is None]
    groups = [CandidateGroup(g.query_id, g.text, (Candidate(g.source_doc, 1, 0.0),)) for g in todo]
    run = annotate(groups, {g.source_doc: corpus[g.source_doc] for g in todo}, backend, judge_dir,
                   config.judge_config(backend.name), progress=progress, max_concurrency=max_concurrency,
                   overwrite=overwrite)
    utility = {j.query_id: j.utility for j in run.judgments}
    for g in todo:
        g.judge_utility = utility.get(g.query_id)
        if g.judge_utility is None:
            g.reason = "judge_failed"
        elif g.judge_utility < config.judge_threshold:
            g.reason = "judge"
    return {k: run.summary[k] for k in ("complete", "queries", "queries_labelled", "calls_new", "calls_cached",
                                        "prompt_tokens", "elapsed_s_this_run")}


def _summary(config: GenerateConfig, model: str, prompt_id: str, sources: Sequence[str], failed: Sequence[str],
             errors: dict[str, str], generated: Sequence[_Generated], stats: Stats, elapsed: float,
             judge: dict[str, Any] | None, n_examples: int, corrupt_lines: list[int]) -> dict[str, Any]:
    kept = [g for g in generated if g.reason is None]
    per_passage = Counter(Counter(g.source_doc for g in kept).get(d, 0) for d in sources)
    return {
        "complete": not errors and (judge is None or judge["complete"]),
        "model": model,
        "prompt_id": prompt_id,
        "examples": n_examples,
        "passages": len(sources),
        "passages_failed": len(failed),
        "passages_errored": len(errors),
        "passage_errors": dict(sorted(errors.items())),
        "generated": len(generated),
        "kept": len(kept),
        "dropped": count_reasons(g.reason for g in generated),
        "kept_per_passage": {str(k): v for k, v in sorted(per_passage.items())},
        "source_rank_of_kept": dict(sorted(Counter(g.bm25_rank for g in kept if g.bm25_rank).items())),
        "judge": judge,
        "elapsed_s_this_run": round(elapsed, 3),
        "queries_per_s_this_run": round(len(generated) / elapsed, 3) if elapsed > 0 else None,
        **stats.to_dict(),
        "call_log_corrupt_lines": corrupt_lines,
        "config": config.to_dict(),
    }


def _write_folder(out_dir: Path, dataset: Dataset, config: GenerateConfig, generated: Sequence[_Generated],
                  summary: dict[str, Any]) -> None:
    """The BEIR folder (corpus copy, kept queries, train qrels, metadata) and the run's records."""
    src = Path(dataset.path) / "corpus.jsonl"
    tmp = out_dir / ".corpus.jsonl.tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, out_dir / "corpus.jsonl")
    kept = [g for g in generated if g.reason is None]
    with atomic_write(out_dir / "queries.jsonl") as fh:
        for g in kept:
            fh.write(json.dumps({"_id": g.query_id, "text": g.text, "metadata": {"source_doc": g.source_doc}},
                                ensure_ascii=False) + "\n")
    (out_dir / "qrels").mkdir(exist_ok=True)
    beir.write_qrels_tsv(out_dir / "qrels" / f"{SPLIT}.tsv", {g.query_id: {g.source_doc: 1} for g in kept})
    task = config.task_spec
    write_meta(out_dir, name=out_dir.name, relevance_level=1, task=None if task.name == "custom" else task.name,
               description=f"queries generated by {summary['model']} for {summary['passages']} passages of "
                           f"{dataset.name}", extra={"generated_from": dataset.name, "prompt_id": summary["prompt_id"]})
    with atomic_write(out_dir / "generations.jsonl") as fh:
        for g in generated:
            fh.write(json.dumps(g.record(), ensure_ascii=False) + "\n")
    with atomic_write(out_dir / "summary.json") as fh:
        json.dump(summary, fh, indent=2)


class _DryGenerator(DryCaller):
    """A :class:`DryCaller` whose synthetic reply is ``count`` queries of ``words`` words."""

    def __init__(self, *args, words: int = 24, **kw):
        super().__init__(*args, **kw)
        self.words = words

    def _synthetic(self, prompt: Prompt, values: dict[str, Any]) -> str:
        if prompt.output == "queries":
            return "\n".join(" ".join(["word"] * self.words) for _ in range(int(values.get("count", 1))))
        return super()._synthetic(prompt, values)


def estimate_generation(dataset: Dataset, config: GenerateConfig | None = None, examples: Sequence[Example] = (),
                        count_tokens: Callable[[Sequence[dict[str, str]]], int] = approx_tokens,
                        query_words: int = 24) -> Estimate:
    """Calls and tokens of a run (without retries), by rendering every prompt.

    Replies are assumed to be ``queries_per_passage`` queries of ``query_words`` words (24: the mean of
    Qwen2.5-Coder-1.5B's SciFact claims in benchmarks/bench_generate.py; questions are shorter); the judge
    (when on) is counted for every generated query (an upper bound: filters run first).
    """
    config = config or GenerateConfig()
    corpus = dataset.corpus
    prompter = _Prompter(config, examples)
    sources = sample_passages(corpus, config.passages, config.seed, config.stratify, min_words=config.min_passage_words,
                              exclude=[e.doc_id for e in examples if e.doc_id])
    est = Estimate()
    dry = _DryGenerator(est, count_tokens=count_tokens, task_values=config.task_spec.values(), words=query_words)
    for d in sources:
        est.queries += 1
        dry.chat(prompter.prompt, prompter.values(corpus[d]), prompter.parse, config.max_tokens(),
                 CallContext(d, "generate", "generate"))
    if config.judge:
        filler = " ".join(["word"] * query_words)
        groups = [CandidateGroup(query_id(d, j), filler, (Candidate(d, 1, 0.0),))
                  for d in sources for j in range(config.queries_per_passage)]
        judged = estimate(groups, {d: corpus[d] for d in sources}, config.judge_config("llamacpp"),
                          count_tokens=count_tokens)
        est.calls += judged.calls
        est.prompt_tokens += judged.prompt_tokens
        est.completion_tokens += judged.completion_tokens
        for step, s in judged.by_step.items():
            est.by_step[f"judge.{step}"] = s
    return est


def expected_queries(est: Estimate, config: GenerateConfig) -> int:
    """Queries the estimated run asks for (before filtering)."""
    return est.queries * config.queries_per_passage

