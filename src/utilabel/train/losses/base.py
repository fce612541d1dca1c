"""Shared contract of the training losses: score matrix + label-weight matrix in, one scalar out.

Every loss is an ``nn.Module`` whose math lives in :meth:`GroupLoss.per_query`; it takes

* ``scores``  ``[Q, D]`` float — similarity logits (already divided by the temperature); an entry of
  ``-inf`` removes that passage from the query's softmax (used to hide unlabeled duplicates of a
  positive among the in-batch negatives);
* ``weights`` ``[Q, D]`` float ≥ 0 — label weight of passage ``d`` for query ``q``; 0 means "not a
  positive" (a negative). Binary labels use 1.0; graded and soft labels are allowed.

and returns the per-query loss ``[Q]``, with 0 for queries that have no positive (masked). No loss
assumes the positive sits at a fixed index. :meth:`GroupLoss.forward` averages over the valid
queries; trainers that need a global normaliser (DDP, GradCache) use ``per_query`` directly.

Distillation losses (``needs_teacher = True``: :mod:`.kl`, :mod:`.margin_mse`, :mod:`.disj_kl`) also
take ``teacher``, a :class:`TeacherScores` aligned with the score matrix: the teacher's score of
each (query, passage) entry and a mask of the entries that have one (normally the query's own
candidate group; other queries' passages and padding are ``False``). Their ``per_query`` takes
``(scores, weights, teacher)``; the other losses keep ``(scores, weights)`` and :meth:`GroupLoss.forward`
passes ``teacher`` only to losses that need it, so existing callers are unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ...errors import ConfigError


def valid_rows(weights: torch.Tensor) -> torch.Tensor:
    """Bool ``[Q]``: queries with at least one positive (weight > 0)."""
    return (weights > 0).any(dim=1)


def check_inputs(scores: torch.Tensor, weights: torch.Tensor) -> None:
    if scores.dim() != 2 or scores.shape != weights.shape:
        raise ConfigError(
            f"scores and weights must be matrices of the same shape [Q, D]; got {tuple(scores.shape)} and {tuple(weights.shape)}"
        )
    if (weights < 0).any():
        raise ConfigError("label weights must be >= 0")


class TeacherScores(NamedTuple):
    """Teacher scores aligned with a ``[Q, D]`` score matrix.

    ``scores`` ``[Q, D]`` float: the teacher's score of passage ``d`` for query ``q`` (any real scale:
    LLM log-odds, a cross-encoder logit, a graded label); ignored where ``mask`` is False, so it may
    hold anything there (0, NaN). ``mask`` ``[Q, D]`` bool: which entries have a teacher score.
    """

    scores: torch.Tensor
    mask: torch.Tensor


def check_teacher(scores: torch.Tensor, teacher: TeacherScores | None, loss: str) -> TeacherScores:
    """``teacher``, checked against the score matrix (a ConfigError naming ``loss`` when it is missing)."""
    if teacher is None:
        raise ConfigError(f"loss {loss!r} needs teacher scores; give the training option teacher "
                          "(a judgments file, first_stage, run:PATH or human)")
    if teacher.scores.shape != scores.shape or teacher.mask.shape != scores.shape:
        raise ConfigError(f"teacher scores and mask must have the score matrix's shape {tuple(scores.shape)}; "
                          f"got {tuple(teacher.scores.shape)} and {tuple(teacher.mask.shape)}")
    if teacher.mask.dtype != torch.bool:
        raise ConfigError(f"teacher mask must be a bool tensor, got {teacher.mask.dtype}")
    if not torch.isfinite(teacher.scores[teacher.mask]).all():
        raise ConfigError("teacher scores must be finite where the mask is True")
    return teacher


def positive_temperature(value: float, what: str) -> float:
    if not (isinstance(value, int | float) and value > 0 and value != float("inf")):
        raise ConfigError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def log_weights(weights: torch.Tensor) -> torch.Tensor:
    """``log w`` with ``-inf`` where ``w == 0`` (no NaN in the backward pass)."""
    pos = weights > 0
    return torch.where(pos, weights.clamp_min(torch.finfo(weights.dtype).tiny).log(), torch.full_like(weights, -torch.inf))


def safe_logsumexp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """logsumexp that returns -inf (with zero gradient, not NaN) for an all -inf row."""
    allneg = torch.isneginf(x).all(dim=dim, keepdim=True)
    x = torch.where(allneg, torch.zeros_like(x), x)
    out = torch.logsumexp(x, dim=dim)
    return torch.where(allneg.squeeze(dim), torch.full_like(out, -torch.inf), out)


class GroupLoss(nn.Module):
    """Base class: subclasses implement :meth:`per_query`; ``name`` is the registry key."""

    name = ""
    #: True when the loss needs exactly one positive per query (the sampler then rotates positives)
    single_positive = False
    #: True when, for a query with one positive (of any weight), the loss has InfoNCE's gradient
    #: (the same objective up to a constant): grids may train such a model once for both losses
    infonce_with_one_positive = False
    #: True when ``per_query`` takes a third argument, the :class:`TeacherScores` (distillation)
    needs_teacher = False

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def rows(self, weights: torch.Tensor, teacher: TeacherScores | None = None,
             scores: torch.Tensor | None = None) -> torch.Tensor:
        """Bool ``[Q]``: the queries this loss averages over (by default those with a positive)."""
        return valid_rows(weights)

    def forward(self, scores: torch.Tensor, weights: torch.Tensor, teacher: TeacherScores | None = None) -> torch.Tensor:
        """Mean loss over :meth:`rows` (0 when there is none); ``teacher`` is ignored by losses
        that do not need it."""
        check_inputs(scores, weights)
        if self.needs_teacher:  # per_query checks the teacher
            per_q = self.per_query(scores, weights, teacher)  # type: ignore[call-arg]  # teacher losses take it
            n = self.rows(weights, teacher, scores).sum()
        else:
            per_q = self.per_query(scores, weights)
            n = self.rows(weights).sum()
        return per_q.sum() / n.clamp_min(1)
