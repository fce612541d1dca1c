"""``utilabel demo``: a small end-to-end run on a CPU (annotation → training → evaluation).

Its output is utilabel's step lines and the table: the progress bars and warnings that transformers
and huggingface_hub print while loading and saving models are switched off for the run (and back on
after it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .argtypes import folder, positive_int


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", type=folder, help="output folder (cached: a re-run is fast)")
    p.add_argument("--queries", type=positive_int, default=6, help="SciFact train queries to annotate (default 6)")
    p.add_argument("--candidates", type=positive_int, default=5, help="BM25 candidates per query (default 5)")
    p.add_argument("--model", default="smollm2-135m",
                   help="embedded llama.cpp annotator: smollm2-135m (fast) or qwen2.5-coder-1.5b (better)")
    p.add_argument("--method", default=None,
                   help="annotation method (default: the library's for the annotator, pointwise), utilsel, relsel, ...")
    p.add_argument("--eval-queries", type=positive_int, default=30, help="sampled test queries per dataset (default 30)")
    p.add_argument("--steps", type=positive_int, default=6, help="training steps per model (default 6)")


def demo(args) -> int:
    """Small end-to-end demo: BM25 → live LLM annotation → training → SciFact/ArguAna table (≈ 10 min CPU)."""
    from ..experiments.demo import GPU_HINT, DemoConfig, format_table, run_demo

    cfg = DemoConfig(out=args.out, train_queries=args.queries, candidates=args.candidates,
                     annotator_model=args.model, method=args.method, eval_queries=args.eval_queries, train_steps=args.steps)
    print("utilabel demo: a SMALL end-to-end run sized for a laptop CPU — numbers from a handful of "
          "queries are illustrative, not results.\n", flush=True)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    with _quiet_libraries():
        res = run_demo(cfg, on_event=say)
    print("nDCG@10 (re-ranking the BM25 pool; scifact = in-domain, arguana = out-of-domain)\n")
    print(format_table(res.table))
    for note in res.notes:
        print(f"- {note}")
    print(f"\nwall time {res.seconds / 60:.1f} min; report: {res.report}\n\n{GPU_HINT}")
    return 0


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """No progress bars or warnings from transformers / huggingface_hub inside the block."""
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf_logging

    verbosity, bars, hub_bars = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(),
                                 not hub.are_progress_bars_disabled())
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hub.disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if hub_bars:
            hub.enable_progress_bars()


COMMANDS = {("demo",): (_demo_args, demo)}
