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
"""

from __future__ import annotations

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

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Mean loss over the queries that have a positive (0 when none has)."""
        check_inputs(scores, weights)
        per_q = self.per_query(scores, weights)
        n = valid_rows(weights).sum()
        return per_q.sum() / n.clamp_min(1)
