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
    """The N-pair form used by HDML and the reference release; a sum over anchor rows, so a
    distributed step splits it by rows (``anchor_slots``, :attr:`MetricLoss.splits_by_anchor_rows`).

    ``forward``: anchors are chunk 0; for each chunk ``s >= 1`` the logits ``Z_0 Z_s^T`` are
    scored by cross-entropy against "uniform over the columns with the same label", averaged
    over ``s``; plus ``l2_weight * sum_t L2(Z_t)``.

    ``synthetic``: for each chunk ``t``, anchor ``a`` scores its synthetic negatives
    ``zhat_{t,a,n}`` (``n != a``) and its positive ``z_{(t+1) mod m, a}`` (in place of ``n = a``);
    cross-entropy with target ``a``; plus ``l2_weight * (L2(Z_t) + L2(candidates_t))``;
    averaged over ``t``.
    """

    splits_by_anchor_rows = True

    def __init__(
        self, num_classes: int | None = None, embedding_dim: int | None = None, *, l2_weight: float = L2_WEIGHT
    ) -> None:
        """``num_classes`` and ``embedding_dim`` are accepted for a uniform constructor; N-pair needs neither."""
        super().__init__()
        self.l2_weight = l2_weight

    def forward(
        self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int, *, anchor_slots: slice = slice(None)
    ) -> Tensor:
        """``anchor_slots``: score only the anchors of these class slots, normalised by the whole
        batch's counts (one rank's rows of a batch over several ranks: the ranks' parts sum to ``J_m``)."""
        C, m = classes_per_batch, per_class
        Z, Y = z.view(m, C, -1), labels.view(m, C)
        A = Z[0][anchor_slots]  # (C_a, D) anchors
        part = A.shape[0] / C  # the anchors' share of the rows (1.0 for all of them)
        loss = z.new_zeros(())
        for s in range(1, m):
            logits = A @ Z[s].T  # (C_a, C)
            target = (Y[0][anchor_slots][:, None] == Y[s][None, :]).to(z.dtype)
            target = target / target.sum(dim=1, keepdim=True).clamp_min(1)
            loss = loss + torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean() * part
        loss = loss / max(m - 1, 1)
        return loss + self.l2_weight * sum(l2_per_row(Z[t][anchor_slots]) * part for t in range(m))

    def synthetic(
        self,
        z: Tensor,
        negatives: SyntheticNegatives,
        labels: Tensor,
        classes_per_batch: int,
        per_class: int,
        *,
        anchor_slots: slice = slice(None),
    ) -> Tensor:
        """``anchor_slots``: as in :meth:`forward`; ``negatives`` are then those of these anchors
        (:func:`~gcahng.cacai.cacai` with the same ``anchor_slots``)."""
        C, m = classes_per_batch, per_class
        D = z.shape[1]
        Z = z.view(m, C, D)[:, anchor_slots]  # (m, C_a, D) anchors
        Ca = Z.shape[1]
        positives = Z.roll(-1, dims=0)  # (m, C_a, D): z_{(t+1) mod m, a}
        own = negatives.own_class.view(m, Ca, C, 1)
        cand = torch.where(own, positives[:, :, None, :], negatives.embeddings.view(m, Ca, C, D))  # [t, a, n]
        logits = torch.einsum("tad,tand->tan", Z, cand)  # (m, C_a, C)
        target = torch.arange(C, device=z.device)[anchor_slots].repeat(m)
        ce = F.cross_entropy(logits.reshape(m * Ca, C), target) * (Ca / C)  # = mean over t of the per-chunk means
        reg = (Z.pow(2).sum(dim=(1, 2)) / C + cand.pow(2).sum(dim=(1, 2, 3)) / (C * C)).mean()
        return ce + self.l2_weight * reg
