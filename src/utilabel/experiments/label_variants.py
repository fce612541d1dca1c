"""Training labels of the grid beyond the shared sources: label noise, statistics, and label files.

Human, judgment and first-stage labels come from :mod:`utilabel.labels.sources`, mixes from
:func:`utilabel.labels.mixing.plan_labels`. Every function here is deterministic given its seed
and works on ``Labels`` (``{query_id: {doc_id: weight}}``, weight > 0 = positive);
:func:`labels_digest` hashes their content (identical labels → the identical cached model) and
:func:`write_labels` stores them for provenance as ``Judgment`` JSONL named by that hash.

Label noise (:func:`add_false_positives`): at rate ``r`` the expected fraction of a query's
positives that are false is ``r``: a query with ``p`` true positives gets ``n = r·p / (1 - r)``
false ones (stochastic rounding), drawn from its top BM25 candidates that are not judged relevant
— plausible-looking, wrong positives, the kind of error an LLM annotator makes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError
from ..fileio import atomic_write
from ..labels import Agreement, Labels
from ..seeding import rng_for


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


def restrict(labels: Labels, query_ids: Sequence[str]) -> Labels:
    keep = set(query_ids)
    return {q: v for q, v in labels.items() if q in keep}


def label_stats(labels: Labels, human: Labels | None = None,
                candidates: Mapping[str, Sequence[str]] | None = None, depth: int = 10) -> dict[str, float]:
    """Queries, queries with ≥ 1 positive, mean positives per query; with ``human`` labels and
    first-stage ``candidates``, the agreement with the human labels over each query's top-``depth``
    candidates (precision, recall, F1, Cohen's kappa; unjudged candidates count as human negatives)."""
    pos = [sum(1 for w in v.values() if w > 0) for v in labels.values()]
    stats = {"queries": len(labels), "queries_with_positive": sum(1 for p in pos if p),
             "mean_positives": (sum(pos) / len(pos)) if pos else 0.0, "max_positives": max(pos, default=0)}
    if human is not None and candidates is not None:
        a = Agreement()
        for qid, docs in labels.items():
            for d in list(candidates.get(qid, []))[:depth]:
                a.add(docs.get(d, 0.0) > 0, human.get(qid, {}).get(d, 0.0) > 0)
        stats.update(precision=a.precision, recall=a.recall, f1=a.f1, kappa=a.kappa)
    return stats


def labels_digest(labels: Labels) -> str:
    """A hash of the labels' content (order-free): what identifies them in model keys and file names."""
    content = json.dumps(sorted((q, d, w) for q in labels for d, w in labels[q].items()))
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def write_labels(folder: str | Path, labels: Labels, method: str) -> Path:
    """Write labels as ``Judgment`` JSONL named ``<method>-<labels_digest>`` (provenance: the labels a
    model was trained on, readable by every judgments reader); returns the path."""
    lines = [json.dumps({"query_id": q, "doc_id": d, "method": method, "utility": w}, sort_keys=True)
             for q in sorted(labels) for d, w in sorted(labels[q].items())]
    path = Path(folder) / f"{method.replace('/', '_')}-{labels_digest(labels)}.jsonl"  # not the method name
    if not path.exists():
        with atomic_write(path) as fh:
            fh.write("\n".join(lines) + ("\n" if lines else ""))
    return path
