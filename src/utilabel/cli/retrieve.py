"""``utilabel retrieve bm25|dense|hybrid``: BM25 top-k run (TREC) and optional candidate groups (JSONL); dense
retrieval with a bi-encoder (:func:`utilabel.retrieve.dense.dense_search`); fusion of TREC runs
(:mod:`utilabel.retrieve.hybrid`)."""

from __future__ import annotations

import argparse

from ..data.candidates import write_candidates
from ..data.registry import load_dataset
from ..data.trec import read_trec_run, write_trec_run
from ..errors import ConfigError
from ..evaluate.fusion import choose_fusion_weight
from ..retrieve.bm25 import BM25Config, BM25Retriever, bm25_candidates, run_from_candidates
from ..retrieve.hybrid import NORMALIZATIONS, fuse, top_k
from .argtypes import nonneg_float, out_file, positive_int, unit_float


def _bm25_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder")
    p.add_argument("--split", default="test", help="qrels split whose queries are searched (default: test)")
    p.add_argument("--k", type=positive_int, default=100, help="documents per query (default: 100)")
    p.add_argument("--k1", type=nonneg_float, default=0.9, help="BM25 k1 (default 0.9, Anserini)")
    p.add_argument("--b", type=unit_float, default=0.4, help="BM25 b (default 0.4, Anserini)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N queries of the split")
    p.add_argument("--out", required=True, type=out_file, help="TREC run file to write")
    p.add_argument("--candidates", default=None, help="also write candidate groups (JSONL) for annotation")


def bm25(args) -> int:
    """Retrieve with BM25 (bm25s, stemming, stopwords) and write a TREC run."""
    ds = load_dataset(args.dataset)
    retriever = BM25Retriever(ds.corpus, BM25Config(k1=args.k1, b=args.b), show_progress=True)
    groups = bm25_candidates(ds, args.split, k=args.k, limit=args.limit, retriever=retriever)
    write_trec_run(args.out, run_from_candidates(groups), tag="bm25")
    if args.candidates:
        write_candidates(args.candidates, groups)
    print(f"wrote {sum(len(g.candidates) for g in groups):,} hits for {len(groups):,} queries to {args.out}")
    return 0


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


def _hybrid_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="two or more TREC run files to fuse")
    p.add_argument("--method", default="rrf", choices=("rrf",) + NORMALIZATIONS,
                   help="rrf (reciprocal-rank fusion, default), or a convex combination of per-query minmax / zscore "
                        "normalised scores")
    p.add_argument("--rrf-k", type=nonneg_float, default=60.0, help="RRF constant k (default 60)")
    p.add_argument("--w", type=unit_float, default=None,
                   help="convex fusion: weight of the first run, the others share 1-w (default: equal weights)")
    p.add_argument("--dev-runs", nargs=2, default=None, metavar=("DEV_A", "DEV_B"),
                   help="convex fusion of two runs: choose --w on these runs of a dev split (needs --dataset)")
    p.add_argument("--dataset", default=None, help="dataset whose --dev-split qrels choose the weight")
    p.add_argument("--dev-split", default="train", help="qrels split for --dev-runs (default train; never test)")
    p.add_argument("--measure", default="nDCG@10", help="measure maximised by --dev-runs (default nDCG@10)")
    p.add_argument("--k", type=positive_int, default=100, help="hits per query kept (default 100)")
    p.add_argument("--out", required=True, type=out_file, help="TREC run file to write")


def hybrid(args) -> int:
    """Fuse TREC runs by reciprocal-rank fusion or a convex combination of normalised scores."""
    if len(args.runs) < 2:
        raise ConfigError(f"fusion needs at least two runs, got {len(args.runs)}")
    w = args.w
    if args.dev_runs:
        if args.method == "rrf" or len(args.runs) != 2 or w is not None:
            raise ConfigError("--dev-runs chooses --w for a minmax / zscore fusion of exactly two runs (without --w)")
        if not args.dataset:
            raise ConfigError("--dev-runs needs --dataset (its --dev-split qrels)")
        if args.dev_split == "test":
            raise ConfigError("--dev-split test would tune the weight on the test queries; use a dev split such as train")
        ds = load_dataset(args.dataset)
        choice = choose_fusion_weight(read_trec_run(args.dev_runs[0]), read_trec_run(args.dev_runs[1]),
                                      ds.qrels(args.dev_split), measure=args.measure, method=args.method,
                                      relevance_level=ds.relevance_level, ignore_identical_ids=ds.ignore_identical_ids)
        w = choice.weight
        print(f"chose w={w:g} on {args.dataset} {args.dev_split}: {choice.measure} {choice.value:.4f}")
    elif args.method == "rrf" and w is not None:
        raise ConfigError("--w applies to minmax / zscore fusion, not rrf")
    run = top_k(fuse([read_trec_run(p) for p in args.runs], args.method, w, args.rrf_k), args.k)
    write_trec_run(args.out, run, tag=f"hybrid-{args.method}")
    print(f"wrote {sum(len(v) for v in run.values()):,} hits for {len(run):,} queries to {args.out}")
    return 0


COMMANDS = {
    ("retrieve", "bm25"): (_bm25_args, bm25),
    ("retrieve", "dense"): (_dense_args, dense),
    ("retrieve", "hybrid"): (_hybrid_args, hybrid),
}
