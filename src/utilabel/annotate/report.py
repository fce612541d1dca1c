"""Label quality of annotation runs against human qrels, and the ``annotate report`` markdown.

Two views, over the queries of a run that have human qrels:

* **Binary labels** — for each label rule (:mod:`utilabel.labels`): precision / recall / F1 of the LLM
  positives (micro over candidate pairs), Cohen's kappa, positives per query next to the human count.
  Human positive = qrel grade ≥ ``relevance_level``; unjudged candidates count as human negatives (as
  in sparse qrels like SciFact's). The free baseline "the first-stage top-1 is the positive" is
  reported on the same candidates.
* **Ranking** — the LLM's order of the candidates (value, then score, LLM rank, first-stage order;
  the order label rules use) against the first-stage order of the same candidates: precision@1, MRR,
  AUC (probability that a human-positive candidate is ordered above a human-negative one; queries with
  both), and nDCG@10 with trec_eval semantics (graded gains; ideal from all the query's qrels).

Also: seconds of LLM time per query (summed call latencies in the run's ``calls.jsonl``) and the
parse-failure table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.judgments import read_judgments
from ..errors import ConfigError
from ..labels import Agreement, LabelRule, parse_rule, ranked_values, rule_agreement
from ..records import Judgment, Qrels
from .parsing import FAILURE_KINDS

DEFAULT_RULES = ("threshold:0.5", "top1", "top1+threshold:0.5")


def auc(order: Sequence[str], positives: set[str]) -> float | None:
    """Fraction of (positive, negative) pairs with the positive ranked first; None without both."""
    n_pos = sum(1 for d in order if d in positives)
    n_neg = len(order) - n_pos
    if not n_pos or not n_neg:
        return None
    above, negatives_seen = 0, 0
    for d in order:
        if d in positives:
            above += n_neg - negatives_seen
        else:
            negatives_seen += 1
    return above / (n_pos * n_neg)


@dataclass
class RunQuality:
    """Label and ranking quality of one run (see the module docstring)."""

    name: str
    method: str
    model: str
    prompt_id: str
    queries: int
    human_pos_per_query: float
    rules: dict[str, Agreement] = field(default_factory=dict)
    pos_per_query: dict[str, float] = field(default_factory=dict)
    baseline: Agreement = field(default_factory=Agreement)
    llm: dict[str, float] = field(default_factory=dict)
    first_stage: dict[str, float] = field(default_factory=dict)
    seconds_per_query: float = math.nan
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)


def _ranking(orders: Mapping[str, Sequence[str]], qrels: Qrels, human: Mapping[str, set[str]],
             relevance_level: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    from ..evaluate.retrieval import evaluate_run

    run = {q: {d: float(len(o) - i) for i, d in enumerate(o)} for q, o in orders.items()}
    res = evaluate_run(run, {q: qrels[q] for q in orders}, ["P@1", "RR@10", "nDCG@10"], relevance_level)
    aucs = {q: auc(o, human[q]) for q, o in orders.items()}
    known = [a for a in aucs.values() if a is not None]
    mean = {"P@1": res.mean["P@1"], "MRR": res.mean["RR@10"], "nDCG@10": res.mean["nDCG@10"],
            "AUC": sum(known) / len(known) if known else math.nan}
    return mean, res.per_query


def run_quality(run_dir: str | Path, qrels: Qrels, rules: Sequence[str | LabelRule] = DEFAULT_RULES,
                relevance_level: int = 1, judgments: Sequence[Judgment] | None = None) -> RunQuality:
    """Quality of one annotation run folder against ``qrels``."""
    d = Path(run_dir)
    path = d / "judgments.jsonl"
    if judgments is None:
        if not path.exists():
            raise ConfigError(f"{d} has no judgments.jsonl (not an annotation run?)")
        judgments = read_judgments(path)
    summary = json.loads((d / "summary.json").read_text(encoding="utf-8")) if (d / "summary.json").exists() else {}
    ranked = {q: items for q, items in ranked_values(judgments).items() if q in qrels}
    first: dict[str, list[str]] = {}
    for j in judgments:
        if j.query_id in ranked:
            first.setdefault(j.query_id, [])
            if j.doc_id not in first[j.query_id]:
                first[j.query_id].append(j.doc_id)
    human = {q: {doc for doc, g in qrels[q].items() if g >= relevance_level} for q in ranked}
    n = len(ranked)
    out = RunQuality(d.name, judgments[0].method if judgments else summary.get("method", "?"),
                     summary.get("model", judgments[0].model if judgments else ""),
                     judgments[0].prompt_id if judgments else "", n,
                     sum(len(human[q] & set(first[q])) for q in ranked) / n if n else 0.0)
    for r in rules:
        rule = parse_rule(r)
        a = rule_agreement(ranked, human, rule)
        out.rules[rule.spec] = a
        out.pos_per_query[rule.spec] = (a.tp + a.fp) / n if n else 0.0
    top1 = LabelRule(top=1)
    out.baseline = rule_agreement({q: [(doc, float(len(o) - i)) for i, doc in enumerate(o)] for q, o in first.items()},
                                  human, top1)
    out.llm, per_llm = _ranking({q: [doc for doc, _ in items] for q, items in ranked.items()}, qrels, human,
                                relevance_level)
    out.first_stage, per_fs = _ranking(first, qrels, human, relevance_level)
    out.per_query = {q: {"llm_nDCG@10": per_llm[q]["nDCG@10"], "first_stage_nDCG@10": per_fs[q]["nDCG@10"]}
                     for q in ranked}
    calls = d / "calls.jsonl"
    if calls.exists() and n:
        spent = 0.0
        for line in calls.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line: the engine re-makes that call
            if rec.get("query_id") in ranked:
                spent += float(rec.get("latency_s") or 0.0)
        out.seconds_per_query = spent / n
    return out


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def quality_tables(results: Sequence[RunQuality]) -> list[str]:
    """Markdown lines: the ranking table and the label-rule table of the runs."""
    lines = ["| run | method | queries | s/query | P@1 LLM / first-stage | MRR LLM / fs | AUC LLM / fs | "
             "nDCG@10 LLM / fs |", "| --- | --- | ---: | ---: | --- | --- | --- | --- |"]
    for r in results:
        lines.append(
            f"| {r.name} | {r.method} | {r.queries} | {_fmt(r.seconds_per_query)} | "
            + " | ".join(f"{_fmt(r.llm[m])} / {_fmt(r.first_stage[m])}" for m in ("P@1", "MRR", "AUC", "nDCG@10"))
            + " |")
    lines += ["", "| run | label rule | precision | recall | F1 | kappa | LLM pos/q | human pos/q |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        b = r.baseline
        lines.append(f"| {r.name} | *first-stage top-1 (free)* | {_fmt(b.precision)} | {_fmt(b.recall)} | "
                     f"{_fmt(b.f1)} | {_fmt(b.kappa)} | 1.00 | {r.human_pos_per_query:.2f} |")
        for spec, a in r.rules.items():
            lines.append(f"| {r.name} | {spec} | {_fmt(a.precision)} | {_fmt(a.recall)} | {_fmt(a.f1)} | "
                         f"{_fmt(a.kappa)} | {r.pos_per_query[spec]:.2f} | {r.human_pos_per_query:.2f} |")
    return lines


def failure_table(run_dirs: Sequence[str | Path]) -> list[str]:
    lines = ["| run | step | " + " | ".join(FAILURE_KINDS) + " | failed steps |",
             "| --- | --- | " + " | ".join("---" for _ in FAILURE_KINDS) + " | --- |"]
    for d in map(Path, run_dirs):
        summary = json.loads((d / "summary.json").read_text(encoding="utf-8")) if (d / "summary.json").exists() else {}
        fails = summary.get("failures") or {}
        for step, kinds in fails.items():
            lines.append(f"| {d.name} | {step} | " + " | ".join(str(kinds.get(k, 0)) for k in FAILURE_KINDS)
                         + f" | {summary.get('failed_steps', {}).get(step, 0)} |")
        if not fails:
            lines.append(f"| {d.name} | (all) | " + " | ".join("0" for _ in FAILURE_KINDS) + " | 0 |")
    return lines


def report_markdown(run_dirs: Sequence[str | Path], qrels: Qrels, rules: Sequence[str] = DEFAULT_RULES,
                    relevance_level: int = 1, title: str = "") -> str:
    """Markdown quality report for one or more annotation run folders."""
    results = [run_quality(d, qrels, rules, relevance_level) for d in run_dirs]
    lines = [f"## Label quality against human qrels{': ' + title if title else ''}", "",
             f"Human positive = qrel ≥ {relevance_level}; unjudged candidates count as human negatives; "
             "agreement micro-averaged over candidate pairs; ranking measures over each query's candidates "
             "(LLM order vs first-stage order; nDCG@10 ideal from all the query's qrels).", "",
             *quality_tables(results), "",
             "### Parse failures (attempts, by kind) and failed steps (after retries)", "",
             *failure_table(run_dirs)]
    return "\n".join(lines)
