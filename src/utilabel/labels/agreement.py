"""Agreement of label-rule positives with human labels (P/R/F1, Cohen's kappa) and the calibration of a
rule's threshold on a small human-labelled sample (``topM+calibrated:T``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .rules import LabelRule


@dataclass
class Agreement:
    """Binary agreement counts of LLM positives with human positives over candidate pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, llm: bool, human: bool) -> None:
        if llm and human:
            self.tp += 1
        elif llm:
            self.fp += 1
        elif human:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def pairs(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

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


def rule_agreement(ranked: Mapping[str, Sequence[tuple[str, float]]], human: Mapping[str, set[str]],
                   rule: LabelRule) -> Agreement:
    """Agreement of ``rule``'s positives with ``human`` positives over the ranked candidates of the
    queries present in both (unjudged candidates count as human negatives)."""
    a = Agreement()
    for qid, items in ranked.items():
        if qid not in human:
            continue
        pos = rule.select(items)
        for d, _ in items:
            a.add(d in pos, d in human[qid])
    return a


CALIBRATION_OBJECTIVES = ("f1", "kappa")


def calibrate(ranked: Mapping[str, Sequence[tuple[str, float]]], human: Mapping[str, set[str]], top: int = 0,
              objective: str = "f1") -> tuple[LabelRule, Agreement]:
    """The ``topM+calibrated:T`` rule (``M = top``, 0 for none) whose threshold maximises ``objective``
    (``f1`` or ``kappa``) against ``human`` positives on the queries of ``ranked`` that have human labels.

    Candidate thresholds are the observed values (a value ≥ T is positive). Ties go to the higher
    threshold (fewer positives). Returns the rule and its agreement on the calibration sample.
    """
    if objective not in CALIBRATION_OBJECTIVES:
        raise ConfigError(f"calibration objective must be one of {', '.join(CALIBRATION_OBJECTIVES)}, "
                          f"got {objective!r}")
    sample = {q: v for q, v in ranked.items() if q in human}
    values = sorted({v for items in sample.values() for _, v in items}, reverse=True)
    if not values:
        raise ConfigError("calibration needs queries with both LLM values and human labels; none found")
    best: tuple[float, LabelRule, Agreement] | None = None
    for t in values:
        rule = LabelRule(top, t, calibrated=True)
        a = rule_agreement(sample, human, rule)
        score = a.f1 if objective == "f1" else a.kappa
        score = -math.inf if math.isnan(score) else score
        if best is None or score > best[0]:
            best = (score, rule, a)
    assert best is not None  # values is not empty
    return best[1], best[2]
