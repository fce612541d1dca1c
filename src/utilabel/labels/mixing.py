"""Mixing label sources: how human and LLM labels combine into a :class:`LabelPlan`.

* :func:`plan_labels` — ``replace``, ``union``, ``curriculum`` or ``uncertain`` (:data:`MIX_STRATEGIES`)
  with a human ratio; the plan gives the labels of each epoch and the queries that got human labels;
* :func:`uncertain_order` — the order in which the ``uncertain`` strategy (and the review page's
  queue) spends a human budget: least certain LLM-labelled query first.

The labels themselves come from :mod:`.sources`; the trainer samples groups from a plan
(:class:`utilabel.train.data.GroupSampler`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..seeding import rng_for
from .rules import Labels

log = logging.getLogger(__name__)

MIX_STRATEGIES = ("replace", "union", "curriculum", "uncertain")


def uncertainty(labels: Mapping[str, float]) -> tuple[int, float]:
    """Sort key (higher = less certain) of a query's LLM labels.

    Class 2: labels disagree across permutations (some soft label strictly between 0 and 1),
    ordered by the fraction of such labels; class 1: no positive or every candidate positive;
    class 0: confident binary labels.
    """
    vals = list(labels.values())
    soft = sum(1 for v in vals if 0.0 < v < 1.0)
    if soft:
        return 2, soft / len(vals)
    n_pos = sum(1 for v in vals if v > 0)
    if n_pos == 0 or n_pos == len(vals):
        return 1, 0.0
    return 0, 0.0


def uncertain_order(llm: Labels, query_ids: Sequence[str], seed: int = 0,
                    margins: Mapping[str, float] | None = None) -> list[str]:
    """``query_ids`` least certain first, ties broken at random by ``seed``: the order in which the
    ``uncertain`` strategy spends the human budget (the review page's queue). Certainty is
    :func:`uncertainty` of the labels; within equal uncertainty, the judgments' ``margins`` when given
    (:func:`utilabel.labels.rule_margins`, smallest first) — what orders pointwise labels, whose
    single soft positive per query makes every query look alike to :func:`uncertainty`."""
    rng = rng_for(seed, "human-choice")
    tiebreak = {q: rng.random() for q in query_ids}
    margin = (lambda q: -margins.get(q, -math.inf)) if margins is not None else (lambda q: 0.0)
    return sorted(query_ids, key=lambda q: (uncertainty(llm.get(q, {})), margin(q), tiebreak[q]), reverse=True)


@dataclass
class LabelPlan:
    """Labels per epoch: ``stages`` is a list of (first_epoch, labels); ``human_queries`` the queries with human labels."""

    stages: list[tuple[int, Labels]]
    human_queries: list[str] = field(default_factory=list)
    strategy: str = "human"

    def labels(self, epoch: int) -> Labels:
        current = self.stages[0][1]
        for start, labels in self.stages:
            if epoch >= start:
                current = labels
        return current

    def all_positive_ids(self) -> dict[str, set[str]]:
        """Every doc that is a positive of a query in any stage (never used as its negative)."""
        out: dict[str, set[str]] = {}
        for _, labels in self.stages:
            for qid, docs in labels.items():
                out.setdefault(qid, set()).update(d for d, w in docs.items() if w > 0)
        return out


def plan_labels(human: Labels | None, llm: Labels | None, human_ratio: float | None = None,
                strategy: str = "replace", seed: int = 0, epochs: int = 1, curriculum_switch: float = 0.5,
                margins: Mapping[str, float] | None = None) -> LabelPlan:
    """Combine human and LLM labels.

    Only ``human``: human labels everywhere. Only ``llm``: LLM labels everywhere. Both: a fraction
    ``human_ratio`` of the queries gets human labels, chosen at random (``replace``, ``union``,
    ``curriculum``) or by LLM-label uncertainty (``uncertain``, ties broken at random):

    * ``replace``: chosen queries use human labels, the rest LLM labels;
    * ``union``: chosen queries use LLM positives ∪ human positives (max weight), the rest LLM;
    * ``curriculum``: LLM labels for every query during the first ``curriculum_switch`` of the
      epochs, then human labels of the chosen queries only;
    * ``uncertain``: like replace, the human budget going to the least certain LLM queries
      (``margins``: see :func:`uncertain_order`).
    """
    if llm is None:
        if human is None:
            raise ConfigError("no label source given")
        return LabelPlan([(0, human)], sorted(human), "human")
    if human is None or not human_ratio:
        return LabelPlan([(0, llm)], [], "llm")
    if strategy not in MIX_STRATEGIES:
        raise ConfigError(f"unknown mix strategy {strategy!r}; valid: {', '.join(MIX_STRATEGIES)}")
    if not 0.0 <= human_ratio <= 1.0:
        raise ConfigError(f"human_ratio must be in [0, 1]; got {human_ratio}")
    qids = sorted(set(llm) | set(human))
    budget = round(human_ratio * len(qids))
    eligible = [q for q in qids if q in human]
    rng = rng_for(seed, "human-choice")
    if strategy == "uncertain":
        chosen = uncertain_order(llm, eligible, seed, margins)[:budget]
    else:
        chosen = rng.sample(eligible, min(budget, len(eligible)))
    chosen_set = set(chosen)
    if strategy in ("replace", "uncertain"):
        mixed = {q: dict(human[q]) if q in chosen_set else dict(llm.get(q, {})) for q in qids}
        stages = [(0, mixed)]
    elif strategy == "union":
        mixed = {}
        for q in qids:
            docs = dict(llm.get(q, {}))
            if q in chosen_set:
                for d, w in human[q].items():
                    docs[d] = max(docs.get(d, 0.0), w)
            mixed[q] = docs
        stages = [(0, mixed)]
    else:  # curriculum
        switch = min(max(1, math.ceil(curriculum_switch * epochs)), max(epochs - 1, 1))
        stages = [(0, {q: dict(llm.get(q, {})) for q in qids}), (switch, {q: dict(human[q]) for q in chosen})]
    log.info("label plan %s: %d/%d queries with human labels", strategy, len(chosen), len(qids))
    return LabelPlan(stages, sorted(chosen), strategy)


