"""Agreement of LLM judgments with human qrels, and the ``annotate report`` markdown.

Agreement is computed over the judged candidate pairs (query, doc) of queries that have human
qrels: LLM positive = label ≥ threshold, human positive = qrel grade ≥ ``relevance_level``
(unjudged candidates count as human negatives, as in sparse qrels like SciFact's). Reported:
precision / recall / F1 of the LLM positives (micro over pairs), Cohen's kappa, the
positives-per-query histograms of both, and the run's parse-failure table (from ``summary.json``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..records import Judgment, Qrels
from .labels import label_of, read_judgments
from .parsing import FAILURE_KINDS


@dataclass
class Agreement:
    label: str
    queries: int = 0
    pairs: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    llm_hist: dict[int, int] = field(default_factory=dict)
    human_hist: dict[int, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def kappa(self) -> float:
        """Cohen's kappa: (p_o - p_e) / (1 - p_e); NaN when both raters are constant and agree."""
        n = self.pairs
        if n == 0:
            return math.nan
        po = (self.tp + self.tn) / n
        pe = ((self.tp + self.fp) * (self.tp + self.fn) + (self.fn + self.tn) * (self.fp + self.tn)) / (n * n)
        return (po - pe) / (1 - pe) if pe < 1 else math.nan


def agreement(judgments: Iterable[Judgment], qrels: Qrels, label: str = "utility", threshold: float = 0.5,
              relevance_level: int = 1) -> Agreement:
    """Pairwise agreement of ``label`` ≥ ``threshold`` with qrels (see module docstring)."""
    by_query: dict[str, list[tuple[str, float]]] = {}
    for j in judgments:
        value = label_of(j, label)
        if value is not None and j.query_id in qrels:
            by_query.setdefault(j.query_id, []).append((j.doc_id, value))
    out = Agreement(label)
    llm_hist: Counter[int] = Counter()
    human_hist: Counter[int] = Counter()
    for qid, pairs in by_query.items():
        out.queries += 1
        n_llm = n_human = 0
        for doc_id, value in pairs:
            llm = value >= threshold
            human = qrels[qid].get(doc_id, 0) >= relevance_level
            n_llm += llm
            n_human += human
            out.pairs += 1
            if llm and human:
                out.tp += 1
            elif llm:
                out.fp += 1
            elif human:
                out.fn += 1
            else:
                out.tn += 1
        llm_hist[n_llm] += 1
        human_hist[n_human] += 1
    out.llm_hist = dict(sorted(llm_hist.items()))
    out.human_hist = dict(sorted(human_hist.items()))
    return out


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def report_markdown(run_dirs: Sequence[str | Path], qrels: Qrels, label: str | None = None, threshold: float = 0.5,
                    relevance_level: int = 1, title: str = "") -> str:
    """Markdown agreement report for one or more annotation run folders."""
    rows, hists, fails = [], [], []
    for d in run_dirs:
        d = Path(d)
        path = d / "judgments.jsonl"
        if not path.exists():
            raise ConfigError(f"{d} has no judgments.jsonl (not an annotation run?)")
        js = read_judgments(path)
        summary = json.loads((d / "summary.json").read_text(encoding="utf-8")) if (d / "summary.json").exists() else {}
        method = js[0].method if js else summary.get("method", "?")
        lab = label or ("relevance" if method == "relsel" else "utility")
        a = agreement(js, qrels, lab, threshold, relevance_level)
        name = d.name
        model = summary.get("model", js[0].model if js else "")
        rows.append(
            f"| {name} | {method} | {model} | {lab} | {a.queries}/{summary.get('queries', a.queries)} | {a.pairs} | "
            f"{_fmt(a.precision)} | {_fmt(a.recall)} | {_fmt(a.f1)} | {_fmt(a.kappa)} | "
            f"{(a.tp + a.fp) / a.queries if a.queries else 0:.2f} | {(a.tp + a.fn) / a.queries if a.queries else 0:.2f} |"
        )
        keys = sorted(set(a.llm_hist) | set(a.human_hist))
        hists.append(f"| {name} | " + ", ".join(f"{k}: {a.llm_hist.get(k, 0)}/{a.human_hist.get(k, 0)}" for k in keys) + " |")
        for step, kinds in (summary.get("failures") or {}).items():
            fails.append(f"| {name} | {step} | " + " | ".join(str(kinds.get(k, 0)) for k in FAILURE_KINDS)
                         + f" | {summary.get('failed_steps', {}).get(step, 0)} |")
        if not summary.get("failures"):
            fails.append(f"| {name} | (all) | " + " | ".join("0" for _ in FAILURE_KINDS) + " | 0 |")
    lines = [f"## Agreement with human qrels{': ' + title if title else ''}", "",
             f"Positive = label ≥ {threshold}; human positive = qrel ≥ {relevance_level}; unjudged candidates count "
             "as human negatives; micro-averaged over judged candidate pairs.", "",
             "| run | method | model | label | queries | pairs | precision | recall | F1 | kappa | LLM pos/q | human pos/q |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
             "### Positives per query (count of queries, LLM/human)", "", "| run | positives: LLM/human |",
             "| --- | --- |", *hists, "",
             "### Parse failures (attempts, by kind) and failed steps (after retries)", "",
             "| run | step | " + " | ".join(FAILURE_KINDS) + " | failed steps |",
             "| --- | --- | " + " | ".join("---" for _ in FAILURE_KINDS) + " | --- |", *fails]
    return "\n".join(lines)
