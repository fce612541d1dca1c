"""``utilabel mine``: dense hard-negative mining into candidate groups (:func:`utilabel.retrieve.mine.mine_negatives`)."""

from __future__ import annotations

import argparse

from ..data.registry import load_dataset
from ..data.trec import read_trec_qrels
from ..errors import ConfigError
from .argtypes import nonneg_float, nonneg_int, out_file, positive_int


def _margin(text: str) -> float | None:
    """A margin ≥ 0, or ``off``."""
    if text.lower() in ("off", "none"):
        return None
    try:
        return nonneg_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'off', got {text!r}") from None


def _args(p: argparse.ArgumentParser) -> None:
    from ..retrieve.encoder import QUANTIZE_MODES
    from ..retrieve.mine import POSITIVE_SCORES

    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder")
    p.add_argument("--split", default="train", help="split whose queries are mined (default train)")
    p.add_argument("--model", default="default", help="dense model: 'default' (MiniLM) or a model folder")
    p.add_argument("--out", required=True, type=out_file, help="candidates JSONL to write (resumable via OUT.partial)")
    p.add_argument("--rank-lo", type=positive_int, default=1, help="first dense rank kept (default 1)")
    p.add_argument("--rank-hi", type=positive_int, default=100, help="last dense rank kept (default 100)")
    p.add_argument("--depth", type=positive_int, default=None, help="dense hits retrieved (default: --rank-hi)")
    p.add_argument("--relative-margin", type=_margin, default=0.95,
                   help="drop candidates scoring > M × the positive's score (default 0.95; 'off')")
    p.add_argument("--absolute-margin", type=_margin, default=None,
                   help="drop candidates scoring > positive score − M (default off)")
    p.add_argument("--positive-score", default="min", choices=POSITIVE_SCORES,
                   help="which positive's score the margins use when a query has several (default min)")
    p.add_argument("--bm25-k", type=nonneg_int, default=0, help="also add BM25's top k, filtered alike (default 0)")
    p.add_argument("--keep-positives", action="store_true", help="keep the known positives among the candidates")
    p.add_argument("--qrels", default=None, help="TREC qrels giving the positives (default: the split's qrels)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N queries of the split")
    p.add_argument("--max-length", type=positive_int, default=256, help="passage tokens kept (default 256)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--index", default="flat", help="flat (exact, default) | ivf | hnsw")
    p.add_argument("--quantize", default="none", choices=QUANTIZE_MODES)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def mine(args) -> int:
    """Mine hard negatives with a dense model (rank window, positive-aware margins, optional BM25 union)."""
    from ..retrieve.dense import DenseConfig
    from ..retrieve.mine import MineConfig, mine_negatives

    config = MineConfig(rank_lo=args.rank_lo, rank_hi=args.rank_hi, depth=args.depth,
                        relative_margin=args.relative_margin, absolute_margin=args.absolute_margin,
                        positive_score=args.positive_score, bm25_k=args.bm25_k, keep_positives=args.keep_positives)
    dense = DenseConfig(max_length=args.max_length, batch_size=args.batch_size, index=args.index,
                        quantize=args.quantize, show_progress=not args.no_progress)
    ds = load_dataset(args.dataset)
    positives = None
    if args.qrels:
        level = ds.relevance_level
        positives = {q: [d for d, g in docs.items() if g >= level] for q, docs in read_trec_qrels(args.qrels).items()}
        if not positives:
            raise ConfigError(f"{args.qrels} has no positives")
    groups, st = mine_negatives(ds, args.split, args.model, config, dense, positives, args.limit, args.out,
                                show_progress=not args.no_progress)
    print(f"wrote {sum(len(g.candidates) for g in groups):,} candidates for {len(groups):,} queries to {args.out}"
          + (f" ({st.resumed:,} queries resumed)" if st.resumed else ""))
    print(f"retrieved {st.retrieved:,}; outside rank window {st.outside_window:,}; bm25 added {st.bm25_added:,}; "
          f"dropped: positives {st.dropped_positive:,}, margin {st.dropped_margin:,}; "
          f"queries without a positive {st.no_positive:,}; empty groups {st.empty_groups:,}")
    return 0


COMMANDS = {("mine",): (_args, mine)}
