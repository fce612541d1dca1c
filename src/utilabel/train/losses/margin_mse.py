"""MarginMSE (Hofstätter et al., 2020, arXiv 2010.02666): the student's score margins between a
positive and each negative follow the teacher's margins.

.. math::  L(q) = \\frac{1}{|P||N|} \\sum_{p \\in P(q)} \\sum_{n \\in N(q)}
           \\Big( (s_{qp} - s_{qn}) - \\frac{t_{qp} - t_{qn}}{\\tau_T} \\Big)^2

over the query's candidates ``C(q)`` (teacher mask True and finite student score, as in
:mod:`.kl`): positives ``P(q) = {d ∈ C : w_d > 0}`` (the labels decide which side of a pair a
passage is on), negatives ``N(q) = {d ∈ C : w_d = 0}``. The original pairs one positive with one
negative per triple; a group with several of each takes the mean over all pairs. Computed as
``Var_P(a) + Var_N(b) + (mean_P a - mean_N b)^2`` with ``a = s - t/τ_T`` on P and ``b`` the same on N
(population variances), which equals the pair mean without the ``[Q, D, D]`` tensor.

Scale: unlike :mod:`.kl`, MarginMSE is *not* invariant to a shift of scale. ``s`` are the logits the
loss receives (``cos / τ`` for utilabel's bi-encoder, so a margin of 1 is ``τ`` in cosine);
``τ_T`` (``teacher_temperature``, default 1) divides the teacher margins to put them on that
scale. Queries without a (positive, negative) pair have loss 0 and are left out of the mean.
"""

from __future__ import annotations

import torch

from .base import GroupLoss, TeacherScores, check_teacher, positive_temperature
from .kl import candidate_mask


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, x, torch.zeros_like(x)).sum(dim=1) / n.clamp_min(1)


def margin_mse(scores: torch.Tensor, weights: torch.Tensor, teacher: TeacherScores,
               teacher_temperature: float = 1.0) -> torch.Tensor:
    """Per-query MarginMSE ``[Q]`` (0 for rows without a positive–negative pair of candidates)."""
    cand = candidate_mask(scores, teacher)
    pos, neg = cand & (weights > 0), cand & (weights == 0)
    t = torch.where(teacher.mask, teacher.scores, torch.zeros_like(teacher.scores)) / teacher_temperature
    a = torch.where(cand, scores, torch.zeros_like(scores)) - t  # finite everywhere
    n_pos, n_neg = pos.sum(dim=1), neg.sum(dim=1)
    mean_p, mean_n = _masked_mean(a, pos, n_pos), _masked_mean(a, neg, n_neg)
    var_p = _masked_mean((a - mean_p.unsqueeze(1)) ** 2, pos, n_pos)
    var_n = _masked_mean((a - mean_n.unsqueeze(1)) ** 2, neg, n_neg)
    loss = var_p + var_n + (mean_p - mean_n) ** 2
    return torch.where((n_pos > 0) & (n_neg > 0), loss, torch.zeros_like(loss))


class MarginMSELoss(GroupLoss):
    name = "margin_mse"
    needs_teacher = True

    def __init__(self, teacher_temperature: float = 1.0):
        super().__init__()
        self.teacher_temperature = positive_temperature(teacher_temperature, "teacher_temperature")

    def rows(self, weights, teacher=None, scores=None):
        """Queries with a positive and a negative candidate."""
        cand = teacher.mask if scores is None else candidate_mask(scores, teacher)
        return (cand & (weights > 0)).any(dim=1) & (cand & (weights == 0)).any(dim=1)

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor, teacher: TeacherScores | None = None) -> torch.Tensor:
        teacher = check_teacher(scores, teacher, self.name)
        return margin_mse(scores, weights, teacher, self.teacher_temperature)
