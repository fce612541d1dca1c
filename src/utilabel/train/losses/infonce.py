"""InfoNCE with one positive per query per step ("Rand1").

.. math::  L(q) = -\\log p(d^+ \\mid q), \\qquad p(d \\mid q) = \\frac{e^{s_{qd}}}{\\sum_{d'} e^{s_{qd'}}}

The softmax runs over every column of the score matrix (the query's group, the other queries'
passages, and under DDP every rank's passages). The loss needs exactly one positive per row; the
data sampler picks it, rotating over the query's positives across epochs (Rand1). The weight of
the positive is ignored (InfoNCE has no label weights); rows without a positive are masked.
With one positive, :mod:`.joint` and :mod:`.disj` (weight 1) equal this loss.
"""

from __future__ import annotations

import torch

from ...errors import ConfigError
from .base import GroupLoss, safe_logsumexp


class InfoNCELoss(GroupLoss):
    name = "infonce"
    infonce_with_one_positive = True
    single_positive = True

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        pos = weights > 0
        if (pos.sum(dim=1) > 1).any():
            raise ConfigError("infonce takes exactly one positive per query; use joint, disj or lsep for several")
        log_z = safe_logsumexp(scores, dim=1)
        pos_score = torch.where(pos, scores, torch.zeros_like(scores)).sum(dim=1)
        valid = pos.any(dim=1)
        return torch.where(valid, log_z - pos_score, torch.zeros_like(log_z))
