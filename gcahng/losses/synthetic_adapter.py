"""The one adapter that feeds CACAI's synthetic negatives to a pytorch-metric-learning loss.

:class:`SyntheticNegativeAdapter` wraps a PML loss (``pytorch_metric_learning.losses.*``) into
the metric-loss interface :class:`gcahng.losses.base.MetricLoss`:

- ``forward(z, labels, C, m) -> J_m``: the PML loss on the real batch, with its own pairing.
- ``synthetic(z, negatives, labels, C, m) -> J_syn``: the PML loss with the synthetic negatives
  ``zhat_{t,a,n}`` (``n != a``; the own-class rows ``n == a`` are never used) fed in one of
  two ways, chosen by the class attribute ``synthetic_as`` (method.md §9):

  ``"anchor_negatives"`` (pair and triplet losses): every real sample is an anchor; its
      positives are the other real samples of its class; its ONLY negatives are its own
      ``C - 1`` synthetic negatives ``zhat_{t,a,n}`` (they replace the real negatives, which
      ``J_m`` already scores, as in the N-pair ``J_syn``). A synthetic row is never an anchor
      or a positive and is never paired with another anchor. This is passed to PML as
      ``ref_emb = [z; zhat]`` with explicit pairs ``(a1, p, a2, n)`` (see
      :func:`anchor_specific_pairs`); PML turns them into triplets for triplet losses.
  ``"samples"`` (proxy losses): the synthetic rows join the batch as label-preserving
      samples of their class: the loss runs on ``[z; zhat]`` with labels ``[y; class of n]``.

Adding another PML loss is a few lines::

    from pytorch_metric_learning import losses as pml_losses

    @METRIC_LOSSES.register("contrastive")
    class ContrastiveLoss(SyntheticNegativeAdapter):
        '''PML's ContrastiveLoss; synthetic negatives as anchor-specific negatives.'''

        def __init__(self, num_classes: int | None = None, embedding_dim: int | None = None, **kwargs) -> None:
            super().__init__(pml_losses.ContrastiveLoss(**kwargs))

(a proxy loss sets ``synthetic_as = "samples"`` and passes ``num_classes, embedding_dim`` on).

Embeddings are passed as they are (not normalised, method.md §1); PML's default distances for
these losses (cosine similarity, L2 distance on normalised embeddings) normalise internally.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from gcahng.cacai import SyntheticNegatives
from gcahng.errors import InputError
from gcahng.losses.base import MetricLoss

SyntheticAs = Literal["anchor_negatives", "samples"]
PairIndices = tuple[Tensor, Tensor, Tensor, Tensor]


def check_batch(z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> None:
    """Raise :class:`InputError` unless ``z`` is (C*m, D) and ``labels`` is (C*m,)."""
    B = classes_per_batch * per_class
    if z.dim() != 2 or z.shape[0] != B:
        raise InputError(
            f"embeddings must have shape (classes_per_batch * per_class = {B}, D), got {tuple(z.shape)}"
        )
    if labels.shape != (B,):
        raise InputError(f"labels must have shape ({B},), got {tuple(labels.shape)}")


def check_negatives(z: Tensor, negatives: SyntheticNegatives, classes_per_batch: int, per_class: int) -> None:
    """Raise :class:`InputError` unless ``negatives`` holds ``m*C*C`` rows of ``z``'s width."""
    C, m = classes_per_batch, per_class
    expected = (m * C * C, z.shape[1])
    if tuple(negatives.embeddings.shape) != expected:
        raise InputError(
            f"synthetic negatives must have shape {expected} (m*C*C, D), got {tuple(negatives.embeddings.shape)}"
        )


def anchor_specific_pairs(labels: Tensor, negatives: SyntheticNegatives) -> PairIndices:
    """PML pair indices for ``ref_emb = [z; zhat[~own_class]]``.

    Args:
        labels: (B,) labels of the real batch (anchors are its rows).
        negatives: CACAI's output; only rows with ``own_class == False`` are used, in row order.
    Returns:
        ``(a1, p, a2, n)``: positive pairs ``(i, j)``, ``i != j`` real samples of one class
        (``p`` indexes the first ``B`` reference rows, i.e. ``z``); negative pairs
        ``(anchor_index[r], B + k)`` for the ``k``-th kept synthetic row ``r``.
    """
    B = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    a1, p = torch.where(same)
    a2 = negatives.anchor_index[~negatives.own_class].to(labels.device)
    n = torch.arange(B, B + a2.shape[0], device=labels.device)
    return a1, p, a2, n


class SyntheticNegativeAdapter(MetricLoss):
    """A PML loss as a GCA-HNG metric loss; see the module docstring for how ``J_syn`` is fed.

    Args:
        pml_loss: an instance of a ``pytorch_metric_learning.losses`` class.

    Class attribute ``synthetic_as``: ``"anchor_negatives"`` or ``"samples"`` (and
    :attr:`MetricLoss.lr_multiplier`).
    """

    synthetic_as: ClassVar[SyntheticAs] = "anchor_negatives"

    def __init__(self, pml_loss: nn.Module) -> None:
        super().__init__()
        self.pml_loss = pml_loss

    def score(self, embeddings: Tensor, labels: Tensor, **pml_kwargs) -> Tensor:
        """The wrapped PML loss; subclasses override it to validate their inputs first."""
        return self.pml_loss(embeddings, labels, **pml_kwargs)

    def forward(self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> Tensor:
        """``J_m``: the PML loss on the real batch ``z`` (B, D) with ``labels`` (B,)."""
        check_batch(z, labels, classes_per_batch, per_class)
        return self.score(z, labels)

    def synthetic(
        self, z: Tensor, negatives: SyntheticNegatives, labels: Tensor, classes_per_batch: int, per_class: int
    ) -> Tensor:
        """``J_syn``: the PML loss with the non-own-class synthetic negatives fed as ``synthetic_as`` says."""
        check_batch(z, labels, classes_per_batch, per_class)
        check_negatives(z, negatives, classes_per_batch, per_class)
        keep = ~negatives.own_class
        zhat, zhat_labels = negatives.embeddings[keep], negatives.labels[keep].to(labels.device)
        if self.synthetic_as == "samples":
            return self.score(torch.cat([z, zhat]), torch.cat([labels, zhat_labels]))
        return self.score(
            z,
            labels,
            indices_tuple=anchor_specific_pairs(labels, negatives),
            ref_emb=torch.cat([z, zhat]),
            ref_labels=torch.cat([labels, zhat_labels]),
        )
