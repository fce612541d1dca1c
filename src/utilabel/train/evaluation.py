"""Exact dense search with a trained (or base) model, for validating training runs.

Encodes the whole corpus and a split's queries with :func:`utilabel.train.model.encode` and ranks
by inner product (exact, numpy), then scores with :func:`utilabel.evaluate.retrieval.evaluate_dataset`.
Full dense retrieval with caching and FAISS lives in :mod:`utilabel.retrieve.dense`.
"""

from __future__ import annotations

import numpy as np

from ..records import Run
from .model import load_encoder


def exact_search(model_dir, dataset, split: str, k: int = 100, batch_size: int = 64, device: str | None = None,
                 show_progress: bool = False, quantize: str = "none") -> Run:
    """Top-``k`` run of ``split``'s queries over the whole corpus by exact inner product."""
    enc = load_encoder(model_dir, device, quantize)
    doc_ids = list(dataset.corpus)
    docs = enc.encode([dataset.corpus[d].full_text() for d in doc_ids], "passage", batch_size, show_progress)
    queries = dataset.split_queries(split)
    qids = list(queries)
    qs = enc.encode([queries[q].text for q in qids], "query", batch_size, show_progress)
    run: Run = {}
    k = min(k, len(doc_ids))
    for start in range(0, len(qids), 256):
        scores = qs[start : start + 256] @ docs.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, qid in enumerate(qids[start : start + 256]):
            run[qid] = {doc_ids[j]: float(scores[row, j]) for j in top[row]}
    return run


def evaluate_model(model_dir, dataset, split: str, measures=("nDCG@10", "R@100", "RR@10"), **kw) -> dict[str, float]:
    """Mean measures of exact dense search with ``model_dir`` on ``dataset``'s ``split``."""
    from ..evaluate.retrieval import evaluate_dataset

    run = exact_search(model_dir, dataset, split, **kw)
    return evaluate_dataset(run, dataset, split, measures).mean
