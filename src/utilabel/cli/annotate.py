"""``utilabel annotate``: LLM annotation of candidate lists, and ``annotate report``."""

from __future__ import annotations

import argparse
import json

from ..annotate.caller import DEFAULT_GEN_TPS, DEFAULT_PROMPT_TPS
from ..annotate.check import NEGATIVE_POOLS
from ..annotate.fusion import SIGNALS
from ..annotate.tasks import task_names
from ..errors import ConfigError
from ..labels import CALIBRATION_OBJECTIVES, DEFAULT_RULE, RULE_HELP, parse_rule, parse_rule_template
from .argtypes import folder, llm_backend, nonneg_float, nonneg_int, out_file, positive_float, positive_int


def _annotate_args(p: argparse.ArgumentParser) -> None:
    from ..annotate import method_names
    from ..annotate.prompts import STYLES
    from ..llm.registry import backend_names

    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder (passage texts, answers)")
    p.add_argument("--split", default="train", help="split whose queries are annotated (default train)")
    p.add_argument("--method", default=None, choices=method_names(),
                   help="annotation method (default: pointwise with a local backend, utilsel with a server)")
    p.add_argument("--style", default="compact", choices=STYLES, help="prompt style")
    p.add_argument("--candidates", help="candidate JSONL (utilabel retrieve output); default: BM25 top-k")
    p.add_argument("--k", type=positive_int, default=10, help="candidates per query (BM25 top-k or first k of --candidates)")
    p.add_argument("--limit", type=positive_int, help="annotate only the first N queries")
    p.add_argument("--out", required=True, type=folder, help="run folder (resumes if it exists)")
    p.add_argument("--backend", default="llamacpp", type=llm_backend, help=f"LLM backend: {', '.join(backend_names())}")
    p.add_argument("--model", default=None, help="model name or GGUF path for the backend")
    p.add_argument("--base-url", action="append", help="OpenAI-compatible server URL (repeatable)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--votes", type=positive_int, default=1, help="k-permutation voting (soft labels)")
    p.add_argument("--no-shuffle", action="store_true", help="keep first-stage order in prompts")
    p.add_argument("--retries", type=nonneg_int, default=2, help="retries after a parse failure")
    p.add_argument("--max-passage-words", type=positive_int, default=None, help="default 100 (local pointwise) or 150")
    p.add_argument("--window", type=positive_int, default=10, help="utilrank window")
    p.add_argument("--stride", type=positive_int, default=5, help="utilrank stride")
    p.add_argument("--top-m", type=positive_int, default=3, help="utilrank graded positives")
    p.add_argument("--answer-source", default=None, choices=["relsel", "none"],
                   help="pointwise pseudo-answer (default: none with a local backend, else relsel)")
    p.add_argument("--task", default=None, choices=task_names(),
                   help="what 'useful' means (default: the dataset's task, e.g. claim for scifact)")
    p.add_argument("--task-instruction", default=None, help="your own yes/no question instead of a task")
    p.add_argument("--label-rule", default=None,
                   help=f"how scores become positives: {RULE_HELP} (default top1 with a local model, top1+threshold:0.5 for pointwise, "
                        "else threshold:0.5)")
    p.add_argument("--calibrate-on", default=None, metavar="QRELS",
                   help="choose the label rule's threshold on human labels: a split name of --dataset or a qrels file")
    p.add_argument("--calibration-queries", type=positive_int, default=50,
                   help="annotated queries (with human labels, in run order) used for calibration")
    p.add_argument("--calibration-objective", default="kappa", choices=CALIBRATION_OBJECTIVES)
    p.add_argument("--signals", default=None,
                   help=f"pointwise signals, comma-separated: {', '.join(SIGNALS)} (default: yesno,first_stage "
                        "with a local backend, else yesno)")
    p.add_argument("--weight", action="append", default=[], metavar="SIGNAL=W",
                   help="pointwise fusion weight of a signal other than yesno (repeatable)")
    p.add_argument("--no-joint", action="store_true", help="compact utilsel: separate pseudo-answer call")
    p.add_argument("--extra-tokens", type=nonneg_int, default=0, help="added to every completion budget (thinking models)")
    p.add_argument("--max-concurrency", type=positive_int, default=None,
                   help="LLM calls in flight at once, across queries (default: the backend's, 4 for openai, "
                        "n_servers × n_parallel for llamacpp; e.g. 64-256 for a vLLM server)")
    p.add_argument("--workers", type=positive_int, default=None, help="queries open at once (default: --max-concurrency)")
    p.add_argument("--max-retries", type=nonneg_int, default=None,
                   help="retries of each failed server request (HTTP 429/5xx, timeout, bad reply; default 4)")
    p.add_argument("--request-timeout", type=positive_float, default=None, help="seconds one server request may take (default 600)")
    p.add_argument("--circuit-breaker", type=nonneg_int, default=20,
                   help="stop after N consecutive calls failed on the server (0: never; default 20)")
    p.add_argument("--shard", help="annotate only slice i of N (i/N, by a stable hash of the query id) into --out")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the judgments of an --out run with other settings (its call log is reused)")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="ray: run --shards shards as Ray tasks and merge them into --out (extra 'ray')")
    p.add_argument("--shards", type=positive_int, default=None, help="--executor ray: number of shards (default: cluster CPUs)")
    p.add_argument("--ray-address", default=None, help="--executor ray: cluster address (default: start a local one)")
    p.add_argument("--dry-run", action="store_true", help="print calls, tokens, time and cost estimates; run nothing")
    p.add_argument("--prompt-tps", type=positive_float, default=DEFAULT_PROMPT_TPS, help="dry run: prompt tokens/s")
    p.add_argument("--gen-tps", type=positive_float, default=DEFAULT_GEN_TPS, help="dry run: completion tokens/s")
    p.add_argument("--usd-per-m-prompt", type=nonneg_float, default=0.0, help="dry run: price per 1M prompt tokens")
    p.add_argument("--usd-per-m-completion", type=nonneg_float, default=0.0, help="dry run: price per 1M completion tokens")
    p.add_argument("--no-progress", action="store_true")


def _weights(items) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--weight must be SIGNAL=NUMBER, got {item!r}") from None
        if not sep:
            raise ConfigError(f"--weight must be SIGNAL=NUMBER, got {item!r}")
    return out


def _options(args) -> dict:
    """The annotation options the flags set (``None``: not given, the library decides); a calibrated
    ``--label-rule`` template runs with its top-M part (or the default threshold) until calibrated."""
    rule = args.label_rule
    if rule is not None:
        template, top = parse_rule_template(rule)
        if template is None:
            if not args.calibrate_on:
                raise ConfigError(f"--label-rule {rule} needs --calibrate-on QRELS")
            template = parse_rule(f"top{top}" if top else DEFAULT_RULE.spec)
        rule = template.spec
    return {
        "method": args.method, "style": args.style, "seed": args.seed, "shuffle": not args.no_shuffle,
        "votes": args.votes, "retries": args.retries, "max_passage_words": args.max_passage_words,
        "window": args.window, "stride": args.stride, "top_m": args.top_m, "answer_source": args.answer_source,
        "joint": False if args.no_joint else None, "extra_tokens": args.extra_tokens, "task": args.task,
        "task_instruction": args.task_instruction, "label_rule": rule, "signals": args.signals,
        "weights": _weights(args.weight) if args.weight else None,
    }


def _config(args, dataset):
    """The run's config: the flags given, resolved by the library for the backend and the dataset."""
    from ..annotate import AnnotateConfig

    return AnnotateConfig.resolve(args.backend, dataset, **_options(args))


def run_annotate(args) -> int:
    """Annotate candidates with an LLM (relsel, utilsel, utilrank, direct-utilsel, pointwise, answer-likelihood)."""
    from ..annotate.dataset import AnnotationJob
    from ..annotate.shards import parse_shard
    from ..data.registry import load_dataset

    dataset = load_dataset(args.dataset)
    job = AnnotationJob.for_dataset(dataset, args.backend, split=args.split, candidates=args.candidates, k=args.k,
                                    limit=args.limit, config=_config(args, dataset))
    if args.dry_run:
        return _report_estimate(job, args)
    run = job.run(args.backend, args.out, backend_options=_backend_options(args), executor=args.executor,
                  shards=args.shards, ray_address=args.ray_address, progress=not args.no_progress,
                  shard=parse_shard(args.shard) if args.shard else None, max_concurrency=args.max_concurrency,
                  workers=args.workers, breaker=args.circuit_breaker, overwrite=args.overwrite)
    if args.calibrate_on:
        from ..annotate.calibration import calibrate_run

        cal = calibrate_run(args.out, _human_qrels(args.calibrate_on, dataset), job.groups,
                            parse_rule(job.config.label_rule).top, args.calibration_queries,
                            args.calibration_objective, dataset.relevance_level)
        print(f"calibrated label rule {cal['rule']} on {len(cal['queries'])} queries "
              f"({args.calibration_objective} {cal[args.calibration_objective]:.3f})")
    return _report_run(run.summary, args.out)


def _report_estimate(job, args) -> int:
    """Print the dry run's calls, tokens, time and cost."""
    from ..annotate import estimate_summary

    report = estimate_summary(job.estimate(), args.prompt_tps, args.gen_tps, 0.0, args.usd_per_m_prompt,
                              args.usd_per_m_completion)
    print(f"queries            {report['queries']}")
    print(f"calls              {report['calls']} (without retries)")
    print(f"prompt tokens      {report['prompt_tokens']:,} (≈ chars/4 + 4 per message)")
    print(f"completion tokens  {report['completion_tokens']:,}")
    for step, s in report["by_step"].items():
        print(f"  {step:<18} {s['calls']} calls, {s['prompt_tokens']:,} prompt, {s['completion_tokens']:,} completion")
    print(f"time               ≈ {report['estimated_seconds'] / 60:.1f} min "
          f"({report['seconds_per_query']} s/query at {args.prompt_tps:g} prompt tok/s, {args.gen_tps:g} gen tok/s)")
    print(f"cost               ≈ ${report['estimated_cost_usd']:.4f}")
    return 0


def _backend_options(args) -> dict:
    """Backend options from the flags; client options only where the backend has them."""
    from ..llm.registry import backend_class

    accepted = set(backend_class(args.backend).option_names())
    options: dict = {}
    if args.model:
        options["model"] = args.model
    if args.base_url:
        options["base_url"] = args.base_url if len(args.base_url) > 1 else args.base_url[0]
    if args.max_concurrency is not None and "concurrency" in accepted:
        options["concurrency"] = args.max_concurrency  # elsewhere it bounds only the engine's calls
    for flag, key in (("max_retries", "max_retries"), ("request_timeout", "timeout_s")):
        if getattr(args, flag) is None:
            continue
        if key not in accepted:
            raise ConfigError(f"--{flag.replace('_', '-')} does not apply to backend {args.backend!r}")
        options[key] = getattr(args, flag)
    return options


def _report_run(s: dict, out_dir) -> int:
    """Print a run's (or merge's) summary; queries that failed on the server end it with exit code 7."""
    from pathlib import Path

    from ..errors import IncompleteRunError

    out_dir = Path(out_dir)
    print(f"{s['queries_labelled']}/{s['queries']} queries labelled ({s['queries_failed']} failed, "
          f"{s['queries_errored']} of them on the server), {s['judgments']} judgments, "
          f"{s['calls_new']} new calls, {s['calls_cached']} replayed")
    fails = {step: {k: v for k, v in kinds.items() if v} for step, kinds in s["failures"].items()}
    if any(fails.values()):
        print("parse failures: " + json.dumps(fails))
    print(f"judgments: {out_dir / 'judgments.jsonl'}\ngroups:    {out_dir / 'groups.jsonl'}")
    if s["queries_errored"] or not s["complete"]:
        first = next(iter(s["query_errors"].items()), None)
        raise IncompleteRunError(
            f"{s['queries_errored']} of {s['queries']} queries failed on the server"
            + (f" (first: {first[0]}: {first[1][:200]})" if first else "")
            + (f"; incomplete shards: {', '.join(s['incomplete_shards'])}" if s.get("incomplete_shards") else "")
            + "; re-run the same command to retry only those")
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    from ..annotate.report import DEFAULT_RULES

    p.add_argument("runs", nargs="+", help="annotation run folder(s) (with judgments.jsonl)")
    p.add_argument("--dataset", required=True, help="dataset with human qrels")
    p.add_argument("--split", default="train")
    p.add_argument("--rules", default=",".join(DEFAULT_RULES), help=f"label rules compared, comma-separated ({RULE_HELP})")
    p.add_argument("--out", type=out_file, help="also write the markdown report here")


def _human_qrels(source: str, dataset):
    """A split of ``dataset`` or a qrels file (TREC or BEIR tsv)."""
    from pathlib import Path

    if Path(source).is_file():
        from ..data.trec import read_trec_qrels

        return read_trec_qrels(source)
    return dataset.qrels(source)


def run_report(args) -> int:
    """Label quality of LLM judgments against human qrels: ranking measures and label rules vs the free baseline."""
    from ..annotate.report import report_markdown
    from ..data.registry import load_dataset

    dataset = load_dataset(args.dataset)
    text = report_markdown(args.runs, dataset.qrels(args.split), rules=[r for r in args.rules.split(",") if r],
                           relevance_level=dataset.relevance_level, title=f"{dataset.name} {args.split}")
    print(text)
    if args.out:
        from ..fileio import atomic_write

        with atomic_write(args.out) as fh:
            fh.write(text + "\n")
    return 0


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="shard folders of one run (annotate --shard i/N)")
    p.add_argument("--out", required=True, help="folder for the merged judgments, groups and summary")
    p.add_argument("--overwrite", action="store_true", help="replace a merged run already in --out")


def run_merge(args) -> int:
    """Join the shard folders of one annotation run exactly once (refuses mixed settings, missing or repeated shards)."""
    from ..annotate.shards import merge_runs

    return _report_run(merge_runs(args.runs, args.out, overwrite=args.overwrite), args.out)


def _check_args(p: argparse.ArgumentParser) -> None:
    from ..llm.registry import backend_names

    p.add_argument("run", type=folder, help="pointwise annotation run folder (with config.json and judgments.jsonl)")
    p.add_argument("--mined", required=True, help="mined candidates JSONL (utilabel mine output)")
    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder (passage texts)")
    p.add_argument("--top", type=positive_int, default=5, help="not-yet-judged mined candidates judged per query (default 5)")
    p.add_argument("--backend", default=None, type=llm_backend,
                   help=f"LLM backend: {', '.join(backend_names())} (default: the one the run's call log records, "
                        "else llamacpp)")
    p.add_argument("--model", default=None, help="model name or GGUF path (default: the run's model)")
    p.add_argument("--base-url", action="append", help="OpenAI-compatible server URL (repeatable)")
    p.add_argument("--max-concurrency", type=positive_int, default=None, help="LLM calls in flight at once")
    p.add_argument("--label-rule", default=None,
                   help="label rule of the groups written (e.g. top3; default: the run's); a checked passage is "
                        "useful when the judge rates it at least as high as the query's weakest positive under it")
    p.add_argument("--negatives", choices=NEGATIVE_POOLS, default="mined",
                   help="hard negatives of the groups written: every mined candidate (default, the measured "
                        "recipe) or the run's candidates then the checked ones")
    p.add_argument("--dry-run", action="store_true", help="print calls, tokens and time estimates; run nothing")
    p.add_argument("--prompt-tps", type=positive_float, default=DEFAULT_PROMPT_TPS, help="dry run: prompt tokens/s")
    p.add_argument("--gen-tps", type=positive_float, default=DEFAULT_GEN_TPS, help="dry run: completion tokens/s")
    p.add_argument("--no-progress", action="store_true")


def run_check(args) -> int:
    """Judge the top mined negatives a pointwise run has not seen, with its settings, into RUN/checked/."""
    from ..annotate import estimate_summary
    from ..annotate.caller import Estimate
    from ..annotate.check import MODES as CHECK_MODES
    from ..annotate.check import (
        check_backend,
        check_negatives,
        checked_groups,
        run_checked_labels,
        run_folder_settings,
    )
    from ..data.candidates import read_candidates
    from ..data.groups import write_groups
    from ..data.registry import load_dataset
    from ..llm.registry import get_backend

    run_folder_settings(args.run)  # a run the check cannot repeat fails before the dataset is loaded
    rule = parse_rule(args.label_rule) if args.label_rule else None
    dataset = load_dataset(args.dataset)
    mined = read_candidates(args.mined, dataset.corpus)
    if args.dry_run:
        res = check_negatives(args.run, mined, dataset.corpus, top=args.top, dry_run=True)
        report = estimate_summary(res.estimate or Estimate(), args.prompt_tps, args.gen_tps)
        print(f"would judge {res.candidates} mined candidates of {len(res.groups)} queries: {report['calls']} calls, "
              f"{report['prompt_tokens']:,} prompt tokens, {report['completion_tokens']:,} completion tokens, "
              f"≈ {report['estimated_seconds'] / 60:.1f} min at {args.prompt_tps:g} prompt tok/s")
        return 0
    name, model = check_backend(args.run, args.backend, args.model)
    options = {k: v for k, v in (("model", model), ("base_url", args.base_url and (
        args.base_url if len(args.base_url) > 1 else args.base_url[0]))) if v}
    with get_backend(name, **options) as backend:
        res = check_negatives(args.run, mined, dataset.corpus, backend, top=args.top, progress=not args.no_progress,
                              max_concurrency=args.max_concurrency)
    _, dropped = run_checked_labels(args.run, "drop", rule)
    useful = sum(len(v) for v in dropped.values())
    s = res.summary or {}
    print(f"judged {res.candidates} mined candidates of {len(res.groups)} queries ({s.get('calls_new', 0)} new calls, "
          f"{s.get('calls_cached', 0)} replayed); the judge found {useful} useful (≥ the query's weakest positive)")
    print(f"judgments: {res.out_dir / 'judgments.jsonl'}")
    for mode in CHECK_MODES:
        path = res.out_dir / f"groups-{mode}.jsonl"
        write_groups(path, checked_groups(args.run, mined, mode, rule, args.negatives))
        print(f"groups ({mode}): {path}")
    return 0


COMMANDS = {
    ("annotate",): (_annotate_args, run_annotate),
    ("annotate", "report"): (_report_args, run_report),
    ("annotate", "merge"): (_merge_args, run_merge),
    ("annotate", "check"): (_check_args, run_check),
}
