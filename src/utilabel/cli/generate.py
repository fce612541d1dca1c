"""``utilabel generate``: LLM-written training queries for a corpus, filtered, as a BEIR folder."""

from __future__ import annotations

import argparse

from ..annotate.caller import DEFAULT_GEN_TPS, DEFAULT_PROMPT_TPS
from ..annotate.tasks import task_names
from ..generate.sampling import MAX_EXAMPLES, STRATIFY
from .annotate import _backend_options
from .argtypes import folder, llm_backend, nonneg_int, positive_float, positive_int, unit_float


def _bounded_examples(text: str) -> int:
    value = positive_int(text)
    if value > MAX_EXAMPLES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_EXAMPLES}, got {text}")
    return value


def _fraction_above_zero(text: str) -> float:
    value = unit_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text}")
    return value


def _generate_args(p: argparse.ArgumentParser) -> None:
    from ..llm.registry import backend_names

    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder whose corpus gets queries")
    p.add_argument("--out", required=True, type=folder, help="the new BEIR folder (resumes if it exists)")
    p.add_argument("--passages", type=positive_int, default=None,
                   help="how many source passages, a seeded sample (default: every passage)")
    p.add_argument("--stratify", default="none", choices=STRATIFY, help="length: equal shares of four length bins")
    p.add_argument("--min-passage-words", type=positive_int, default=8, help="shorter passages get no queries")
    p.add_argument("--queries-per-passage", type=positive_int, default=2, help="queries asked for per passage")
    p.add_argument("--task", default=None, choices=task_names(),
                   help="what a query is for (default: the dataset's task, else qa)")
    p.add_argument("--task-instruction", default=None, help="your own yes/no question instead of a task")
    p.add_argument("--examples", default=None, metavar="FILE",
                   help=f"few-shot: JSONL of {{query, passage}} or {{query, doc_id}}; the first --num-examples "
                        f"(≤ {MAX_EXAMPLES}) set the style")
    p.add_argument("--num-examples", type=_bounded_examples, default=MAX_EXAMPLES, help="examples used from --examples")
    p.add_argument("--max-passage-words", type=positive_int, default=200, help="passages are cut to this in prompts")
    p.add_argument("--min-words", type=positive_int, default=3, help="length filter: shortest query kept")
    p.add_argument("--max-words", type=positive_int, default=40, help="length filter: longest query kept")
    p.add_argument("--near-duplicate", type=_fraction_above_zero, default=0.8,
                   help="drop a query whose token overlap (Jaccard) with a kept query of the same passage reaches this (1: off)")
    p.add_argument("--round-trip-k", type=nonneg_int, default=100,
                   help="keep a query only if its source passage is in BM25's top-k for it (0: off)")
    p.add_argument("--judge", action="store_true", help="also keep only queries whose source passage the pointwise judge finds useful")
    p.add_argument("--judge-threshold", type=unit_float, default=0.5, help="--judge: least P(useful) kept")
    p.add_argument("--backend", default="llamacpp", type=llm_backend, help=f"LLM backend: {', '.join(backend_names())}")
    p.add_argument("--model", default=None, help="model name or GGUF path for the backend")
    p.add_argument("--base-url", action="append", help="OpenAI-compatible server URL (repeatable)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seeds the passage sample and every call")
    p.add_argument("--temperature", type=unit_float, default=0.0, help="sampling temperature of the calls")
    p.add_argument("--retries", type=nonneg_int, default=1, help="retries after a reply with no query")
    p.add_argument("--extra-tokens", type=nonneg_int, default=0, help="added to every completion budget (thinking models)")
    p.add_argument("--max-concurrency", type=positive_int, default=None,
                   help="LLM calls in flight at once (default: the backend's)")
    p.add_argument("--max-retries", type=nonneg_int, default=None, help="retries of each failed server request")
    p.add_argument("--request-timeout", type=positive_float, default=None, help="seconds one server request may take")
    p.add_argument("--circuit-breaker", type=nonneg_int, default=20, help="stop after N consecutive server failures (0: never)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out run with other settings (its call log is reused)")
    p.add_argument("--dry-run", action="store_true", help="print calls, tokens and a time estimate; run nothing")
    p.add_argument("--prompt-tps", type=positive_float, default=DEFAULT_PROMPT_TPS, help="dry run: prompt tokens/s")
    p.add_argument("--gen-tps", type=positive_float, default=DEFAULT_GEN_TPS, help="dry run: completion tokens/s")
    p.add_argument("--no-progress", action="store_true")


def _config(args, dataset):
    from ..generate import GenerateConfig

    return GenerateConfig(
        passages=args.passages, stratify=args.stratify, min_passage_words=args.min_passage_words,
        queries_per_passage=args.queries_per_passage, task=args.task or dataset.task or "qa",
        task_instruction=args.task_instruction, max_passage_words=args.max_passage_words, temperature=args.temperature,
        seed=args.seed, retries=args.retries, min_words=args.min_words, max_words=args.max_words,
        near_duplicate=args.near_duplicate, round_trip_k=args.round_trip_k, judge=args.judge,
        judge_threshold=args.judge_threshold, extra_tokens=args.extra_tokens)


def run_generate(args) -> int:
    """Write training queries for a corpus with an LLM, filter them, and save a BEIR folder (train split)."""
    from ..data.registry import load_dataset
    from ..generate import generate, read_examples
    from ..llm.registry import get_backend

    dataset = load_dataset(args.dataset)
    config = _config(args, dataset)
    examples = read_examples(args.examples, dataset.corpus, args.num_examples) if args.examples else []
    if args.dry_run:
        return _report_estimate(dataset, config, examples, args)
    with get_backend(args.backend, **_backend_options(args)) as backend:
        run = generate(dataset, backend, args.out, config, examples, progress=not args.no_progress,
                       max_concurrency=args.max_concurrency, breaker=args.circuit_breaker, overwrite=args.overwrite)
    return _report_run(run.summary, args.out)


def _report_estimate(dataset, config, examples, args) -> int:
    from ..annotate import estimate_summary
    from ..generate import estimate_generation

    report = estimate_summary(estimate_generation(dataset, config, examples), args.prompt_tps, args.gen_tps)
    print(f"passages           {report['queries']} ({report['queries'] * config.queries_per_passage} queries asked for)")
    print(f"calls              {report['calls']} (without retries)")
    print(f"prompt tokens      {report['prompt_tokens']:,} (≈ chars/4 + 4 per message)")
    print(f"completion tokens  {report['completion_tokens']:,} (24-word queries)")
    for step, s in report["by_step"].items():
        print(f"  {step:<18} {s['calls']} calls, {s['prompt_tokens']:,} prompt, {s['completion_tokens']:,} completion")
    print(f"time               ≈ {report['estimated_seconds'] / 60:.1f} min "
          f"({report['seconds_per_query']} s/passage at {args.prompt_tps:g} prompt tok/s, {args.gen_tps:g} gen tok/s)")
    return 0


def _report_run(s: dict, out_dir) -> int:
    """Print a run's summary; passages that failed on the server end it with exit code 7."""
    import json

    from ..errors import IncompleteRunError, UtilabelError

    print(f"{s['kept']}/{s['generated']} queries kept from {s['passages']} passages "
          f"({s['passages_failed']} without a query, {s['passages_errored']} failed on the server), "
          f"{s['calls_new']} new calls, {s['calls_cached']} replayed")
    print("dropped: " + json.dumps({k: v for k, v in s["dropped"].items() if v}))
    print(f"folder:  {out_dir} (train split; utilabel data info {out_dir} --validate)")
    if not s["kept"]:
        raise UtilabelError(f"no generated query passed the filters, so {out_dir} is no dataset yet; each drop's reason "
                            f"is in {out_dir}/generations.jsonl (loosen --round-trip-k, --judge-threshold, --max-words)")
    if not s["complete"]:
        first = next(iter(s["passage_errors"].items()), None)
        raise IncompleteRunError(f"{s['passages_errored']} of {s['passages']} passages failed on the server"
                                 + (f" (first: {first[0]}: {first[1][:200]})" if first else "")
                                 + "; re-run the same command to retry only those")
    return 0


COMMANDS = {("generate",): (_generate_args, run_generate)}
