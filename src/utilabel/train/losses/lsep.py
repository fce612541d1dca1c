"""LSEPair (log-sum-exp pairwise) loss.

.. math::  L(q) = \\log\\Big(1 + \\sum_{p \\in P(q)} \\sum_{n \\notin P(q)} w_p\\, e^{s_{qn} - s_{qp}}\\Big)
           = \\mathrm{softplus}\\big(\\mathrm{LSE}_{n \\notin P}(s_{qn}) + \\mathrm{LSE}_{p \\in P}(\\log w_p - s_{qp})\\big)

because the double sum factorises: ``Σ_p Σ_n w_p e^{s_n - s_p} = (Σ_n e^{s_n})(Σ_p w_p e^{-s_p})``.
Every positive must outscore every negative; unlike the softmax losses positives never compete
with each other. With binary labels ``w_p = 1``, the formula of arXiv 2602.12727, which found it the
most robust to label noise. Columns with score ``-inf`` are ignored; a row with no negative
column has loss ``log 1 = 0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import GroupLoss, log_weights, safe_logsumexp


class LSEPLoss(GroupLoss):
    name = "lsep"

    def per_query(self, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        pos = weights > 0
        neg_lse = safe_logsumexp(scores.masked_fill(pos, -torch.inf), dim=1)
        pos_lse = safe_logsumexp(torch.where(pos, log_weights(weights) - scores, torch.full_like(scores, -torch.inf)), dim=1)
        x = neg_lse + pos_lse  # -inf when there is no negative (or no positive)
        valid = pos.any(dim=1) & torch.isfinite(x)
        return torch.where(valid, F.softplus(torch.where(valid, x, torch.zeros_like(x))), torch.zeros_like(x))
