"""Exact dense search with a trained (or base) model, for validating training runs.

The same encoder stack and flat (exact inner product) index as ``utilabel retrieve dense``
(:mod:`utilabel.retrieve.dense`), with the model's own token limits and no embedding cache; scored
with :func:`utilabel.evaluate.retrieval.evaluate_dataset`.
"""

from __future__ import annotations

from ..records import Run
from ..retrieve.dense import DenseConfig, dense_search


def exact_search(model_dir, dataset, split: str, k: int = 100, batch_size: int = 64, show_progress: bool = False,
                 quantize: str = "none") -> Run:
    """Top-``k`` run of ``split``'s queries over the whole corpus by exact inner product."""
    config = DenseConfig(max_length=None, query_max_length=None, batch_size=batch_size, cache=False,
                         show_progress=show_progress, quantize=quantize)
    return dense_search(dataset, split, model_dir, k, config)


def evaluate_model(model_dir, dataset, split: str, measures=("nDCG@10", "R@100", "RR@10"), **kw) -> dict[str, float]:
    """Mean measures of exact dense search with ``model_dir`` on ``dataset``'s ``split``."""
    from ..evaluate.retrieval import evaluate_dataset

    run = exact_search(model_dir, dataset, split, **kw)
    return evaluate_dataset(run, dataset, split, measures).mean
