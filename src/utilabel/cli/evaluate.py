"""``utilabel evaluate RUN``: retrieval measures of a TREC run against a dataset's qrels; ``utilabel evaluate
rag``: a reader LLM answers from a run's top passages (:func:`utilabel.evaluate.rag.evaluate_rag`)."""

from __future__ import annotations

import argparse
import json

from ..data.registry import load_dataset
from ..data.trec import read_trec_qrels, read_trec_run
from ..evaluate.measures import DEFAULT_MEASURES
from ..evaluate.retrieval import evaluate_run
from .argtypes import llm_backend, nonneg_int, positive_int


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="TREC run file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="dataset name or BEIR folder (its qrels and conventions)")
    src.add_argument("--qrels", help="TREC qrels file (instead of --dataset)")
    p.add_argument("--split", default="test")
    p.add_argument("--measures", nargs="+", default=list(DEFAULT_MEASURES), help="e.g. nDCG@10 RR@10 R@100 AP")
    p.add_argument("--relevance-level", type=nonneg_int, default=None, help="min grade for binary measures (default: dataset's)")
    p.add_argument("--per-query", action="store_true", help="print per-query values (TSV)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def evaluate(args) -> int:
    """Evaluate a TREC run: nDCG@10, RR@10, R@100, AP (trec_eval definitions)."""
    run = read_trec_run(args.run)
    if args.dataset:
        ds = load_dataset(args.dataset)
        qrels, level, ignore = ds.qrels(args.split), ds.relevance_level, ds.ignore_identical_ids
    else:
        qrels, level, ignore = read_trec_qrels(args.qrels), 1, False
    if args.relevance_level is not None:
        level = args.relevance_level
    result = evaluate_run(run, qrels, args.measures, relevance_level=level, ignore_identical_ids=ignore)
    if args.json:
        print(json.dumps({"mean": result.mean, **({"per_query": result.per_query} if args.per_query else {})}, indent=2))
        return 0
    if args.per_query:
        for qid, values in result.per_query.items():
            print("\t".join([qid] + [f"{values[m]:.4f}" for m in result.mean]))
    print(result.format())
    return 0


def _rag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="TREC run whose top-k passages the reader sees")
    p.add_argument("--dataset", required=True, help="dataset with gold answers (squad, hotpotqa)")
    p.add_argument("--split", default="test")
    p.add_argument("--reader", default="llamacpp", type=llm_backend, help="LLM backend name (llamacpp, openai, transformers, ...)")
    p.add_argument("--model", default="qwen2.5-coder-1.5b", help="reader model name for the backend")
    p.add_argument("--base-url", default=None, help="server URL for the openai backend")
    p.add_argument("--k", type=positive_int, default=5, help="passages per question (default 5)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N questions with answers")
    p.add_argument("--log", default=None, help="answer log (JSONL, resumable); default in the data home")
    p.add_argument("--json", action="store_true", help="print the means as JSON")


def rag(args) -> int:
    """RAG evaluation: a reader LLM answers from top-k passages; EM, F1, ROUGE-L, answer-in-passages."""
    from ..evaluate.rag import RAGConfig, evaluate_rag
    from ..llm.registry import get_backend

    ds = load_dataset(args.dataset)
    run = read_trec_run(args.run)
    options = {"model": args.model}
    if args.base_url:
        options["base_url"] = args.base_url
    with get_backend(args.reader, **options) as reader:
        res = evaluate_rag(run, ds, args.split, reader, RAGConfig(k=args.k, limit=args.limit), log_path=args.log,
                           show_progress=True)
    if args.json:
        print(json.dumps({"questions": len(res.per_query), **res.mean}))
    else:
        print(f"questions\t{len(res.per_query)}\n{res.format()}")
    return 0


COMMANDS = {
    ("evaluate",): (_args, evaluate),
    ("evaluate", "rag"): (_rag_args, rag),
}
