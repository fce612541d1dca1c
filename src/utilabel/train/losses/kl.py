"""Listwise KL distillation: the student's softmax over a query's candidates follows the teacher's.

.. math::  \\mathcal{C}(q) = \\{d : \\text{teacher mask}_{qd} \\wedge s_{qd} > -\\infty\\}
.. math::  p_T(d \\mid q) = \\frac{e^{t_{qd}/\\tau_T}}{\\sum_{d' \\in \\mathcal{C}(q)} e^{t_{qd'}/\\tau_T}}, \\qquad
           p_S(d \\mid q) = \\frac{e^{s_{qd}}}{\\sum_{d' \\in \\mathcal{C}(q)} e^{s_{qd'}}}
.. math::  L(q) = \\mathrm{KL}(p_T \\,\\|\\, p_S) = \\sum_{d \\in \\mathcal{C}(q)} p_T(d)\\,\\big(\\log p_T(d) - \\log p_S(d)\\big)

``s`` are the logits the loss receives: for utilabel's bi-encoder ``cos / τ`` with the *model*
temperature already applied (``BiEncoder.scores``), so the student's sharpness is the model's.
``τ_T`` (``teacher_temperature``, default 1) only reshapes the teacher: scaling every teacher
score and ``τ_T`` by the same factor leaves the loss unchanged; ``τ_T → ∞`` gives the uniform
target; ``τ_T → 0`` the one-hot target of the teacher's best candidate (the loss becomes
``-log p_S(best)``, InfoNCE over the group). Both softmaxes run over the query's own candidates
only — the entries the teacher scored (other queries' passages and padding have mask False);
entries with student score ``-inf`` are dropped from both. Both log-probabilities come from
logsumexp. Label weights are not used. A query with fewer than two candidates has loss 0 and is
left out of the mean (a one-point distribution carries no signal). The gradient in ``s`` is
``p_S - p_T`` on the candidates. The listwise distillation of RocketQAv2 (Ren et al., 2021); with
an LLM judge the teacher scores are e.g. its log-odds of "yes".
"""

from __future__ import annotations

import torch

from .base import GroupLoss, TeacherScores, check_teacher, positive_temperature, safe_logsumexp


def candidate_mask(scores: torch.Tensor, teacher: TeacherScores) -> torch.Tensor:
    """Bool ``[Q, D]``: entries with a teacher score and a finite student score."""
    return teacher.mask & torch.isfinite(scores)


def masked_log_softmax(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log softmax`` over the entries where ``mask`` is True; 0 elsewhere (no NaN, also
    in the backward pass, for empty rows or non-finite values outside the mask)."""
    x = torch.where(mask, x, torch.full_like(x, -torch.inf))
    lse = safe_logsumexp(x, dim=1)
    lse = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse)).unsqueeze(1)
    return torch.where(mask, x - lse, torch.zeros_like(x))


def kl_rows(teacher: TeacherScores, scores: torch.Tensor | None = None) -> torch.Tensor:
    """Bool ``[Q]``: queries with at least two candidates (without ``scores``: two teacher-scored entries)."""
    cand = teacher.mask if scores is None else candidate_mask(scores, teacher)
    return cand.sum(dim=1) >= 2


def listwise_kl(scores: torch.Tensor, teacher: TeacherScores, teacher_temperature: float = 1.0) -> torch.Tensor:
    """Per-query ``KL(p_T || p_S)`` ``[Q]`` over :func:`candidate_mask` (0 for rows with < 2 candidates)."""
    cand = candidate_mask(scores, teacher)
    t = torch.where(teacher.mask, teacher.scores, torch.zeros_like(teacher.scores)) / teacher_temperature
    log_pt = masked_log_softmax(t, cand)
    log_ps = masked_log_softmax(scores, cand)
    pt = torch.where(cand, log_pt.exp(), torch.zeros_like(log_pt))
    kl = (pt * (log_pt - log_ps)).sum(dim=1)
    return torch.where(cand.sum(dim=1) >= 2, kl, torch.zeros_like(kl))


class KLDistillLoss(GroupLoss):
    name = "kl"
    needs_teacher = True

    def __init__(self, teacher_temperature: float = 1.0):
        super().__init__()
        self.teacher_temperature = positive_temperature(teacher_temperature, "teacher_temperature")

    def rows(self, weights, teacher=None, scores=None):
        """Queries with at least two candidates (positives are not needed)."""
        return kl_rows(teacher, scores)

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor, teacher: TeacherScores | None = None) -> torch.Tensor:
        teacher = check_teacher(scores, teacher, self.name)
        return listwise_kl(scores, teacher, self.teacher_temperature)
