"""Choosing the weight of a convex run fusion (:mod:`utilabel.retrieve.hybrid`) by a retrieval measure.

:func:`choose_fusion_weight` grid-searches the weight ``w`` of the first of two runs. Give it runs and
qrels of a **dev split** (e.g. SciFact train), never the test split whose numbers you report: the
chosen weight would then be tuned on the test queries and the fused test value overstated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..records import Qrels, Run
from ..retrieve.hybrid import convex, first_run_weights
from .measures import parse_measure
from .retrieval import evaluate_run

DEFAULT_GRID = tuple(i / 10 for i in range(11))


@dataclass(frozen=True)
class FusionChoice:
    """The chosen first-run weight, its measure value, and the value of every grid point."""

    weight: float
    value: float
    measure: str
    values: dict[float, float]


def choose_fusion_weight(run_a: Run, run_b: Run, qrels: Qrels, grid: Sequence[float] = DEFAULT_GRID,
                         measure: str = "nDCG@10", method: str = "minmax", relevance_level: int = 1,
                         ignore_identical_ids: bool = False) -> FusionChoice:
    """The weight ``w`` of ``run_a`` in :func:`convex` (``run_b`` gets ``1 - w``) that maximises ``measure``.

    ``run_a``, ``run_b`` and ``qrels`` must come from a **dev split** (queries disjoint from the
    test queries you report on); tuning on the test split overstates the fused run. Ties go to the
    grid point closest to 0.5, then the smaller ``w``. Only queries in ``qrels`` are scored.
    """
    grid = list(grid)
    if not grid:
        raise ConfigError("the weight grid is empty")
    name = str(parse_measure(measure))
    a = {q: d for q, d in run_a.items() if q in qrels}
    b = {q: d for q, d in run_b.items() if q in qrels}
    values: dict[float, float] = {}
    for w in grid:
        fused = convex([a, b], first_run_weights(w, 2), method)
        values[w] = evaluate_run(fused, qrels, [name], relevance_level, ignore_identical_ids).mean[name]
    best = max(values.items(), key=lambda kv: (kv[1], -abs(kv[0] - 0.5), -kv[0]))
    return FusionChoice(best[0], best[1], name, values)
