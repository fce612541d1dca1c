"""Judgments → training groups under a label rule (:mod:`.rules`).

Candidates without a label (a failed LLM step) are left out; queries with no positive are skipped
(nothing to learn from). Each group carries the judgments' raw teacher scores of its passages
(:func:`utilabel.labels.teacher.judgments_teacher`; None when no passage has one), so an annotation
run's ``groups.jsonl`` can train a distillation loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..records import CandidateGroup, Judgment, TrainingGroup
from .rules import DEFAULT_RULE, LabelRule, judgment_labels
from .teacher import judgments_teacher


def groups_from_judgments(
    judgments: Iterable[Judgment],
    candidates: Sequence[CandidateGroup],
    rule: LabelRule | str = DEFAULT_RULE,
    weights: str = "binary",
) -> list[TrainingGroup]:
    """Training groups from judgments, in candidate-group order: per query, the positives chosen by
    ``rule`` (weight 1.0, or the soft value with ``weights="soft"``) and the other labelled candidates
    as hard negatives, in first-stage order. Queries with no positive are skipped (nothing to learn)."""
    judgments = list(judgments)
    labels = judgment_labels(judgments, rule, weights)
    teacher = judgments_teacher(judgments)
    out = []
    for g in candidates:
        per = labels.get(g.query_id)
        if not per:
            continue
        order = list(dict.fromkeys(c.doc_id for c in sorted(g.candidates, key=lambda c: c.rank) if c.doc_id in per))
        pos = {d: per[d] for d in order if per[d] > 0}
        if pos:
            scored = {d: s for d, s in teacher.get(g.query_id, {}).items() if d in per}
            out.append(TrainingGroup(g.query_id, g.query, pos, [d for d in order if d not in pos],
                                     {d: scored[d] for d in order if d in scored} or None))
    return out
