"""Calibrating a run's label rule on a few human labels (``--calibrate-on``).

The threshold of ``topM+calibrated:T`` is chosen by :func:`utilabel.labels.calibrate` on the first
``n_queries`` annotated queries (in run order) that have human qrels. The chosen rule is written to
``label_rule.json`` in the run folder (with the calibration queries, objective and agreement), which
:func:`utilabel.labels.run_label_rule` — and so every stage reading the run — applies from then on, and
``groups.jsonl`` is rewritten with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..data.groups import write_groups
from ..data.judgments import read_judgments
from ..errors import ConfigError
from ..fileio import atomic_write
from ..labels import RULE_FILE, calibrate, groups_from_judgments, ranked_values
from ..records import CandidateGroup, Qrels


def calibrate_run(run_dir: str | Path, qrels: Qrels, candidates: Sequence[CandidateGroup], top: int = 1,
                  n_queries: int = 50, objective: str = "kappa", relevance_level: int = 1) -> dict:
    """Choose, store and apply the run's calibrated label rule; returns what ``label_rule.json`` holds."""
    if n_queries < 1:
        raise ConfigError(f"--calibration-queries must be ≥ 1, got {n_queries}")
    run_dir = Path(run_dir)
    judgments = read_judgments(run_dir / "judgments.jsonl")
    ranked = ranked_values(judgments)
    chosen = [g.query_id for g in candidates if g.query_id in ranked and g.query_id in qrels][:n_queries]
    human = {q: {d for d, grade in qrels[q].items() if grade >= relevance_level} for q in chosen}
    rule, agreement = calibrate({q: ranked[q] for q in chosen}, human, top, objective)
    info = {"rule": rule.spec, "objective": objective, "queries": chosen, "f1": agreement.f1,
            "kappa": agreement.kappa, "precision": agreement.precision, "recall": agreement.recall}
    with atomic_write(run_dir / RULE_FILE) as fh:
        json.dump(info, fh, indent=1)
    write_groups(run_dir / "groups.jsonl", groups_from_judgments(judgments, candidates, rule))
    return info
