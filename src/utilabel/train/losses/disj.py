"""Disj-InfoNCE: summed marginal likelihood of the positives (the paper's multi-positive loss).

.. math::  L(q) = -\\log \\sum_{d \\in P(q)} w_d\\, p(d \\mid q)
           = \\mathrm{LSE}_{d'}(s_{qd'}) - \\mathrm{LSE}_{d \\in P(q)}(s_{qd} + \\log w_d)

The model is rewarded when *any* positive ranks high (a disjunction), so it does not have to
split probability across positives as :mod:`.joint` does. Computed with two logsumexps; the
official code takes ``softmax``, clamps at 1e-9 and logs, which saturates at ``-log(1e-9)≈20.7``
and gives zero gradient once every positive's probability underflows (see the tests). Graded or
soft weights ``w_d ∈ (0, ∞)`` are allowed. With one positive of weight 1 it equals
:mod:`.infonce`.
"""

from __future__ import annotations

import torch

from .base import GroupLoss, log_weights, safe_logsumexp


class DisjLoss(GroupLoss):
    name = "disj"
    infonce_with_one_positive = True  # −log(w·p) = −log p − log w

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        log_z = safe_logsumexp(scores, dim=1)
        log_pos = safe_logsumexp(scores + log_weights(weights), dim=1)
        valid = (weights > 0).any(dim=1)
        return torch.where(valid, log_z - torch.where(valid, log_pos, torch.zeros_like(log_pos)), torch.zeros_like(log_z))
