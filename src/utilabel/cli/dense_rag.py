"""``utilabel retrieve dense`` and ``utilabel evaluate rag``: thin wrappers over
:func:`utilabel.retrieve.dense.dense_search` and :func:`utilabel.evaluate.rag.evaluate_rag`."""

from __future__ import annotations

import argparse
import json

from .argtypes import llm_backend, out_file, positive_int


def _dense_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="model folder (a training run or any sentence-transformers folder); 'default' = MiniLM")
    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, type=out_file, help="TREC run file to write")
    p.add_argument("--k", type=positive_int, default=100, help="hits per query (default 100)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N queries of the split")
    p.add_argument("--index", default="flat", help="flat (exact, default) | ivf | hnsw")
    p.add_argument("--max-length", type=positive_int, default=256, help="passage tokens kept (default 256)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    from ..retrieve.encoder import QUANTIZE_MODES

    p.add_argument("--quantize", default="none", choices=QUANTIZE_MODES,
                   help="int8: dynamically quantised linear layers, CPU only (faster encoding, slightly lower scores)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--evaluate", action="store_true", help="also print nDCG@10 / R@100 on the split's qrels")


def dense(args) -> int:
    """Dense retrieval with a bi-encoder and FAISS; writes a TREC run (embeddings cached)."""
    from ..data.registry import load_dataset
    from ..data.trec import write_trec_run
    from ..retrieve.dense import DenseConfig, dense_search

    ds = load_dataset(args.dataset)
    cfg = DenseConfig(max_length=args.max_length, batch_size=args.batch_size, index=args.index,
                      cache=not args.no_cache, show_progress=True, quantize=args.quantize)
    run = dense_search(ds, args.split, args.model, k=args.k, config=cfg, limit=args.limit)
    write_trec_run(args.out, run, tag="utilabel-dense")
    print(f"wrote {sum(len(v) for v in run.values()):,} hits for {len(run):,} queries to {args.out}")
    if args.evaluate:
        from ..evaluate.retrieval import evaluate_run

        qrels = {q: r for q, r in ds.qrels(args.split).items() if q in run}
        res = evaluate_run(run, qrels, relevance_level=ds.relevance_level, ignore_identical_ids=ds.ignore_identical_ids)
        for m, v in res.mean.items():
            print(f"{m}\t{v:.4f}")
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
    from ..data.registry import load_dataset
    from ..data.trec import read_trec_run
    from ..evaluate.rag import RAGConfig, evaluate_rag
    from ..llm.base import get_backend

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
    ("retrieve", "dense"): (_dense_args, dense),
    ("evaluate", "rag"): (_rag_args, rag),
}
