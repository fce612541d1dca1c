"""Agreement of review labels: Cohen's kappa between annotators and between each annotator and the LLM.

Pairs are the (query, passage) pairs both raters labelled; a grade ≥ ``relevance_level`` counts as
positive, and the LLM's label is the trainer's (mean over the runs' judgments, positive at ≥ 0.5, as
the page suggests). The counting and the kappa are :func:`utilabel.annotate.report.agreement`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from ..annotate.report import Agreement, agreement
from ..errors import ConfigError
from ..records import Judgment
from ..train.data import llm_labels
from .queue import SUGGEST_AT, read_runs
from .store import read_logs, to_qrels

LLM = "LLM"


@dataclass(frozen=True)
class RaterPair:
    a: str
    b: str
    result: Agreement

    @property
    def observed(self) -> float:
        r = self.result
        return (r.tp + r.tn) / r.pairs if r.pairs else float("nan")


def _as_judgments(labels: dict[str, dict[str, float]], rater: str) -> list[Judgment]:
    return [Judgment(q, d, rater, utility=float(v)) for q, docs in labels.items() for d, v in docs.items()]


def review_agreement(out: str | Path, run_dirs: Sequence[str | Path] = (), relevance_level: int = 1,
                     judgment_method: str | None = None) -> list[RaterPair]:
    """Kappa for every pair of annotators with logs beside ``out``, then each annotator against the LLM
    labels of ``run_dirs`` (if given)."""
    logs = read_logs(out)
    if not logs:
        raise ConfigError(f"no review logs beside {out} (expected {Path(out).name}.<annotator>.log.jsonl)")
    qrels = {name: to_qrels(subs) for name, subs in logs.items()}
    binary = {name: {q: {d: float(g >= relevance_level) for d, g in docs.items()} for q, docs in qr.items()}
              for name, qr in qrels.items()}
    out_pairs = []
    for a, b in combinations(sorted(qrels), 2):
        out_pairs.append(RaterPair(a, b, agreement(_as_judgments(binary[a], a), qrels[b], "utility", 0.5,
                                                   relevance_level)))
    if run_dirs:
        llm = _as_judgments(llm_labels(read_runs(run_dirs), judgment_method), LLM)
        for name in sorted(qrels):
            out_pairs.append(RaterPair(name, LLM, agreement(llm, qrels[name], "utility", SUGGEST_AT, relevance_level)))
    return out_pairs
