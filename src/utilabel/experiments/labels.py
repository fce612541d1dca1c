"""Training labels of the grid: human qrels, LLM judgments, label noise and human/LLM mixes.

Every function returns ``Labels`` (``{query_id: {doc_id: weight}}``, weight > 0 = positive) and
is deterministic given its seed; :func:`write_labels` stores them as ``Judgment`` JSONL (the input
format of :func:`utilabel.train.trainer.train`) named by a content hash, so identical labels give
the identical file and the identical (cached) model.

Label noise (:func:`add_false_positives`): at rate ``r`` the expected fraction of a query's
positives that are false is ``r``: a query with ``p`` true positives gets ``n = r·p / (1 - r)``
false ones (stochastic rounding), drawn from its top BM25 candidates that are not judged relevant
— plausible-looking, wrong positives, the kind of error an LLM annotator makes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError
from ..fileio import atomic_write

Labels = dict[str, dict[str, float]]


def rng_for(*parts) -> random.Random:
    """A ``random.Random`` seeded from a stable hash of ``parts``."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def human_labels(qrels: Mapping[str, Mapping[str, int]], relevance_level: int = 1,
                 query_ids: Sequence[str] | None = None) -> Labels:
    """Positives (weight 1) of the qrels; judged non-relevant docs are kept with weight 0."""
    qids = list(qrels) if query_ids is None else [q for q in query_ids if q in qrels]
    return {q: {d: 1.0 if r >= relevance_level else 0.0 for d, r in qrels[q].items()} for q in qids}


def judgment_labels(records: Sequence[Mapping], label: str = "utility", method: str | None = None) -> Labels:
    """Mean ``label`` field per (query, doc) over judgment records (soft labels in [0, 1])."""
    sums: dict[tuple[str, str], list[float]] = {}
    for rec in records:
        if method is not None and rec.get("method") != method:
            continue
        value = rec.get(label)
        if value is None:
            continue
        value = float(value)
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ConfigError(f"judgment {label} must be in [0, 1]; got {value} for "
                              f"({rec.get('query_id')}, {rec.get('doc_id')})")
        sums.setdefault((str(rec["query_id"]), str(rec["doc_id"])), []).append(value)
    out: Labels = {}
    for (q, d), vals in sums.items():
        out.setdefault(q, {})[d] = sum(vals) / len(vals)
    return out


def add_false_positives(labels: Labels, candidates: Mapping[str, Sequence[str]], rate: float, seed: int,
                        depth: int = 10) -> Labels:
    """Human labels plus false positives from the top-``depth`` candidates (see module docstring)."""
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"noise rate must be in [0, 1), got {rate}")
    out: Labels = {}
    for qid, docs in labels.items():
        new = dict(docs)
        true_pos = [d for d, w in docs.items() if w > 0]
        if rate > 0 and true_pos:
            rng = rng_for(seed, "noise", rate, qid)
            expected = rate * len(true_pos) / (1.0 - rate)
            n = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            pool = [d for d in list(candidates.get(qid, []))[:depth] if docs.get(d, 0.0) <= 0]
            for d in rng.sample(pool, min(n, len(pool))):
                new[d] = 1.0
        out[qid] = new
    return out


def mix_labels(human: Labels, llm: Labels, ratio: float, seed: int) -> tuple[Labels, list[str]]:
    """Human labels for ``round(ratio · n)`` seeded-random queries of ``llm``'s queries, LLM labels for
    the rest. Returns the labels and the queries that got human labels."""
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"human ratio must be in [0, 1], got {ratio}")
    qids = sorted(llm)
    eligible = [q for q in qids if q in human]
    k = min(round(ratio * len(qids)), len(eligible))
    chosen = set(rng_for(seed, "human-ratio").sample(eligible, k))
    return {q: dict(human[q]) if q in chosen else dict(llm[q]) for q in qids}, sorted(chosen)


def binarize(labels: Labels, threshold: float) -> Labels:
    """Soft labels (e.g. pointwise P(useful)) as 0/1: weight ≥ ``threshold`` → 1.0, else 0.0."""
    return {q: {d: 1.0 if w >= threshold else 0.0 for d, w in v.items()} for q, v in labels.items()}


def restrict(labels: Labels, query_ids: Sequence[str]) -> Labels:
    keep = set(query_ids)
    return {q: v for q, v in labels.items() if q in keep}


def label_stats(labels: Labels) -> dict[str, float]:
    """Queries, queries with ≥ 1 positive, and mean positives per query."""
    pos = [sum(1 for w in v.values() if w > 0) for v in labels.values()]
    return {"queries": len(labels), "queries_with_positive": sum(1 for p in pos if p),
            "mean_positives": (sum(pos) / len(pos)) if pos else 0.0}


def write_labels(folder: str | Path, labels: Labels, method: str) -> Path:
    """Write labels as ``Judgment`` JSONL named ``<method>-<hash of the labels>``; returns the path."""
    lines = [json.dumps({"query_id": q, "doc_id": d, "method": method, "utility": w}, sort_keys=True)
             for q in sorted(labels) for d, w in sorted(labels[q].items())]
    content = json.dumps(sorted((q, d, w) for q in labels for d, w in labels[q].items()))
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]  # the labels only, not the method name
    path = Path(folder) / f"{method.replace('/', '_')}-{digest}.jsonl"
    if not path.exists():
        with atomic_write(path) as fh:
            fh.write("\n".join(lines) + ("\n" if lines else ""))
    return path
