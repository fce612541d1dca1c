"""Joint (multi-softmax) loss: every positive is a separate softmax target.

.. math::  L(q) = -\\sum_{d \\in P(q)} w_d \\log p(d \\mid q)
           = \\sum_{d \\in P(q)} w_d \\big( \\mathrm{LSE}_{d'}(s_{qd'}) - s_{qd} \\big)

(the official code's "multi-softmax"). ``p`` is the softmax over all columns; positives compete
with each other, so the optimum spreads probability across P. Weights are used as given; pass
``normalize=True`` to divide by ``Σ w_d`` (a weighted mean of the per-positive InfoNCE terms).
With a single positive of weight 1 this equals :mod:`.infonce`.
"""

from __future__ import annotations

import torch

from .base import GroupLoss, safe_logsumexp


class JointLoss(GroupLoss):
    name = "joint"

    def __init__(self, normalize: bool = False):
        super().__init__()
        self.normalize = normalize

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        pos = weights > 0
        log_z = safe_logsumexp(scores, dim=1).unsqueeze(1)
        nll = torch.where(pos, log_z - scores, torch.zeros_like(scores))
        loss = (weights * nll).sum(dim=1)
        if self.normalize:
            loss = loss / weights.sum(dim=1).clamp_min(torch.finfo(weights.dtype).tiny)
        return torch.where(pos.any(dim=1), loss, torch.zeros_like(loss))
