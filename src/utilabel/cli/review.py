"""``utilabel review serve`` (the labelling page) and ``utilabel review agreement`` (kappa)."""

from __future__ import annotations

import argparse
import getpass
import math


def _default_annotator() -> str:
    from ..review.store import ANNOTATOR

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    return name if ANNOTATOR.fullmatch(name) else "annotator"


def _serve_args(p: argparse.ArgumentParser) -> None:
    from ..train.config import TrainConfig

    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="annotation run folder(s) (judgments.jsonl)")
    p.add_argument("--dataset", required=True, help="dataset name or BEIR folder the runs were annotated on")
    p.add_argument("--split", default="train", help="split of the runs' queries (default train)")
    p.add_argument("--budget", default="0.2",
                   help="queries to review: a fraction (0.2, counted as --human-ratio counts) or a count (150)")
    p.add_argument("--out", required=True, help="qrels file to write (TREC); logs and annotator file beside it")
    p.add_argument("--annotator", default=_default_annotator(), help="your name: one log per annotator (default: login)")
    p.add_argument("--host", help="listen on this address instead of 127.0.0.1 (then a token is required)")
    p.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    p.add_argument("--token", help="access token (default: generated and printed when --host is given)")
    p.add_argument("--seed", type=int, default=TrainConfig.seed,
                   help=f"tie-break seed of the queue order; use the trainer's (default {TrainConfig.seed})")
    p.add_argument("--judgment-method", help="only this method's judgments (as the trainer's flag)")
    p.add_argument("--label-rule", help="how judgments become LLM labels (as the trainer's flag; default: the runs' rule)")


def review_serve(args) -> int:
    """Label the queries the LLM is least sure of in a local web page; the labels become TREC qrels."""
    from ..data.registry import load_dataset
    from ..review import start

    session = start(args.runs, load_dataset(args.dataset), args.split, args.out, args.budget, args.annotator,
                    args.host, args.port, args.token, args.seed, args.judgment_method, args.label_rule)
    done = session.queue.labelled(session.store.mine)
    print(f"review {len(session.queue.items)} of {session.queue.total} queries ({done} labelled) "
          f"as {args.annotator}; labels -> {args.out}", flush=True)
    print(f"open {session.url}", flush=True)
    session.serve()
    return 0


def _agreement_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="QRELS", help="the --out of review serve (annotator logs beside it)")
    p.add_argument("--runs", nargs="+", default=[], metavar="RUN_DIR", help="annotation runs: also compare with the LLM")
    p.add_argument("--dataset", help="dataset whose relevance level binarises graded labels (default level 1)")
    p.add_argument("--judgment-method", help="LLM labels of this method only")
    p.add_argument("--label-rule", help="how judgments become LLM labels (default: the runs' rule)")


def review_agreement(args) -> int:
    """Cohen's kappa between review annotators and between each annotator and the LLM."""
    from ..data.registry import load_dataset
    from ..review import review_agreement as compute

    level = load_dataset(args.dataset).relevance_level if args.dataset else 1
    rows = compute(args.out, args.runs, level, args.judgment_method, args.label_rule)
    print(f"{'raters':<32} {'queries':>7} {'pairs':>6} {'agree':>6} {'kappa':>6}")
    for r in rows:
        kappa = "n/a" if math.isnan(r.result.kappa) else f"{r.result.kappa:.3f}"
        agree = "n/a" if math.isnan(r.observed) else f"{r.observed:.3f}"
        print(f"{r.a + ' vs ' + r.b:<32} {r.queries:>7} {r.result.pairs:>6} {agree:>6} {kappa:>6}")
    if not rows:
        print("(one annotator and no --runs: nothing to compare)")
    return 0


COMMANDS = {("review", "serve"): (_serve_args, review_serve), ("review", "agreement"): (_agreement_args, review_agreement)}
