"""N-pair metric loss ``J_m`` and its synthetic-negative form ``J_syn`` (method.md §5)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gcahng.cacai import SyntheticNegatives
from gcahng.losses.base import MetricLoss
from gcahng.losses.registry import METRIC_LOSSES
from gcahng.losses.regularization import L2_WEIGHT, l2_per_row


@METRIC_LOSSES.register("npair")
class NPairLoss(MetricLoss):
    """The N-pair form used by HDML and the reference release.

    ``forward``: anchors are chunk 0; for each chunk ``s >= 1`` the logits ``Z_0 Z_s^T`` are
    scored by cross-entropy against "uniform over the columns with the same label", averaged
    over ``s``; plus ``l2_weight * sum_t L2(Z_t)``.

    ``synthetic``: for each chunk ``t``, anchor ``a`` scores its synthetic negatives
    ``zhat_{t,a,n}`` (``n != a``) and its positive ``z_{(t+1) mod m, a}`` (in place of ``n = a``);
    cross-entropy with target ``a``; plus ``l2_weight * (L2(Z_t) + L2(candidates_t))``;
    averaged over ``t``.
    """

    def __init__(
        self, num_classes: int | None = None, embedding_dim: int | None = None, *, l2_weight: float = L2_WEIGHT
    ) -> None:
        """``num_classes`` and ``embedding_dim`` are accepted for a uniform constructor; N-pair needs neither."""
        super().__init__()
        self.l2_weight = l2_weight

    def forward(self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> Tensor:
        C, m = classes_per_batch, per_class
        Z, Y = z.view(m, C, -1), labels.view(m, C)
        loss = z.new_zeros(())
        for s in range(1, m):
            logits = Z[0] @ Z[s].T  # (C, C)
            target = (Y[0][:, None] == Y[s][None, :]).to(z.dtype)
            target = target / target.sum(dim=1, keepdim=True).clamp_min(1)
            loss = loss + torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
        loss = loss / max(m - 1, 1)
        return loss + self.l2_weight * sum(l2_per_row(Z[t]) for t in range(m))

    def synthetic(
        self, z: Tensor, negatives: SyntheticNegatives, labels: Tensor, classes_per_batch: int, per_class: int
    ) -> Tensor:
        C, m = classes_per_batch, per_class
        D = z.shape[1]
        Z = z.view(m, C, D)
        positives = Z.roll(-1, dims=0)  # (m, C, D): z_{(t+1) mod m, a}
        own = negatives.own_class.view(m, C, C, 1)
        cand = torch.where(own, positives[:, :, None, :], negatives.embeddings.view(m, C, C, D))  # [t, a, n]
        logits = torch.einsum("tad,tand->tan", Z, cand)  # (m, C, C)
        target = torch.arange(C, device=z.device).repeat(m)
        ce = F.cross_entropy(logits.reshape(m * C, C), target)  # = mean over t of the per-chunk means
        reg = (Z.pow(2).sum(dim=(1, 2)) / C + cand.pow(2).sum(dim=(1, 2, 3)) / (C * C)).mean()
        return ce + self.l2_weight * reg
