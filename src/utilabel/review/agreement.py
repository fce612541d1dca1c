"""Agreement of review labels: Cohen's kappa between annotators and between each annotator and the LLM.

Pairs are the (query, passage) pairs both raters labelled; an annotator's grade ≥ ``relevance_level``
is a positive, and the LLM's positives are the trainer's (:mod:`utilabel.labels.sources`, as the
page suggests them). Counting and kappa are :class:`utilabel.labels.Agreement`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from ..errors import ConfigError
from ..labels import Agreement
from ..labels.sources import file_labels
from .queue import judgment_files
from .store import read_logs, to_qrels

LLM = "LLM"

Binary = Mapping[str, Mapping[str, bool]]


@dataclass
class RaterPair:
    a: str
    b: str
    queries: int = 0
    result: Agreement = field(default_factory=Agreement)

    @property
    def observed(self) -> float:
        r = self.result
        return (r.tp + r.tn) / r.pairs if r.pairs else float("nan")


def compare(a: str, labels_a: Binary, b: str, labels_b: Binary) -> RaterPair:
    """Agreement of two raters over the pairs both labelled."""
    pair = RaterPair(a, b)
    for qid in labels_a.keys() & labels_b.keys():
        common = labels_a[qid].keys() & labels_b[qid].keys()
        pair.queries += bool(common)
        for did in common:
            pair.result.add(labels_a[qid][did], labels_b[qid][did])
    return pair


def review_agreement(out: str | Path, run_dirs: Sequence[str | Path] = (), relevance_level: int = 1,
                     judgment_method: str | None = None, label_rule: str | None = None) -> list[RaterPair]:
    """Every pair of annotators with logs beside ``out``, then each annotator against the LLM labels of
    ``run_dirs`` (if given)."""
    logs = read_logs(out)
    if not logs:
        raise ConfigError(f"no review logs beside {out} (expected {Path(out).name}.<annotator>.log.jsonl)")
    human = {name: {q: {d: g >= relevance_level for d, g in docs.items()} for q, docs in to_qrels(subs).items()}
             for name, subs in logs.items()}
    pairs = [compare(a, human[a], b, human[b]) for a, b in combinations(sorted(human), 2)]
    if run_dirs:
        llm = {q: {d: w > 0 for d, w in docs.items()}
               for q, docs in file_labels(judgment_files(run_dirs), judgment_method, label_rule).items()}
        pairs += [compare(name, human[name], LLM, llm) for name in sorted(human)]
    return pairs

