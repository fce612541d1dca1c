"""Disj-InfoNCE plus listwise KL distillation: learn from the labels and from the teacher's scores.

.. math::  L(q) = L_{\\mathrm{disj}}(q) + \\lambda\\, \\mathrm{KL}\\big(p_T(\\cdot \\mid q) \\,\\|\\, p_S(\\cdot \\mid q)\\big)

:mod:`.disj` on the full score matrix (in-batch negatives included, label weights as given) and
:mod:`.kl` on the query's own candidates (teacher temperature ``τ_T``); ``λ`` is ``kl_weight``
(default 1). The mean runs over the queries where either term is defined (a positive, or at least
two teacher-scored candidates), so queries the judge found nothing useful for still teach the
ranking among their candidates. With ``λ = 0`` the loss, its rows and its gradient are exactly
:mod:`.disj`'s; with one positive and ``λ = 0`` it is InfoNCE.
"""

from __future__ import annotations

import math

import torch

from ...errors import ConfigError
from .base import GroupLoss, TeacherScores, check_teacher, positive_temperature, valid_rows
from .disj import DisjLoss
from .kl import kl_rows, listwise_kl


class DisjKLLoss(GroupLoss):
    name = "disj_kl"
    needs_teacher = True

    def __init__(self, kl_weight: float = 1.0, teacher_temperature: float = 1.0):
        super().__init__()
        if not (isinstance(kl_weight, int | float) and math.isfinite(kl_weight) and kl_weight >= 0):
            raise ConfigError(f"kl_weight must be a finite number >= 0, got {kl_weight!r}")
        self.kl_weight = float(kl_weight)
        self.teacher_temperature = positive_temperature(teacher_temperature, "teacher_temperature")
        self._disj = DisjLoss()

    def rows(self, weights, teacher=None, scores=None):
        rows = valid_rows(weights)
        if self.kl_weight > 0 and teacher is not None:
            rows = rows | kl_rows(teacher, scores)
        return rows

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor, teacher: TeacherScores | None = None) -> torch.Tensor:
        teacher = check_teacher(scores, teacher, self.name)
        loss = self._disj.per_query(scores, weights)
        if self.kl_weight > 0:
            loss = loss + self.kl_weight * listwise_kl(scores, teacher, self.teacher_temperature)
        return loss
