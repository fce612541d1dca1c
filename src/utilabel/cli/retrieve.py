"""``utilabel retrieve bm25``: BM25 top-k run (TREC) and optional candidate groups (JSONL)."""

from __future__ import annotations

import argparse

from ..data.candidates import write_candidates
from ..data.registry import load_dataset
from ..data.trec import write_trec_run
from ..retrieve.bm25 import BM25Config, BM25Retriever, bm25_candidates, run_from_candidates
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


COMMANDS = {("retrieve", "bm25"): (_bm25_args, bm25)}
