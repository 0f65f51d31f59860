"""Pair and triplet metric losses taken from pytorch-metric-learning (PML), not rewritten.

PML (which imports scipy.stats, about a second) is imported when a loss is built, not when
this module is registered. Both feed the synthetic negatives as anchor-specific negatives through
:class:`~gcahng.losses.synthetic_adapter.SyntheticNegativeAdapter`. Hyper-parameters are PML's
defaults, which are the usual ones; PML's default distances normalise the embeddings.
"""
from __future__ import annotations

from gcahng.losses.registry import METRIC_LOSSES
from gcahng.losses.synthetic_adapter import SyntheticNegativeAdapter


@METRIC_LOSSES.register("multi_similarity")
class MultiSimilarityLoss(SyntheticNegativeAdapter):
    """Multi-Similarity loss (Wang et al. 2019), PML's ``MultiSimilarityLoss`` on cosine similarity.

    ``alpha = 2`` (positives), ``beta = 50`` (negatives), ``base = 0.5``; mean over anchors.
    Without the paper's pair-mining step (as PML's loss alone): every pair is scored.
    ``num_classes`` and ``embedding_dim`` are accepted for uniform construction and unused.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        *,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
    ) -> None:
        from pytorch_metric_learning import losses as pml_losses

        super().__init__(pml_losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base))


@METRIC_LOSSES.register("triplet")
class TripletMarginLoss(SyntheticNegativeAdapter):
    """Triplet margin loss, PML's ``TripletMarginLoss``: L2 distance of L2-normalised embeddings.

    ``margin = 0.05`` (PML's default), all triplets of the batch, averaged over the triplets
    with a non-zero loss. ``num_classes`` and ``embedding_dim`` are accepted and unused.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        *,
        margin: float = 0.05,
    ) -> None:
        from pytorch_metric_learning import losses as pml_losses

        super().__init__(pml_losses.TripletMarginLoss(margin=margin, triplets_per_anchor="all"))


@METRIC_LOSSES.register("supcon")
class SupConLoss(SyntheticNegativeAdapter):
    """Supervised contrastive loss (Khosla et al. 2020), PML's ``SupConLoss``: a softmax over the
    cosine similarities divided by ``temperature`` (0.1, PML's default), for every positive pair
    against the anchor's negatives; mean over positive pairs. ``num_classes`` and
    ``embedding_dim`` are accepted and unused.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        *,
        temperature: float = 0.1,
    ) -> None:
        from pytorch_metric_learning import losses as pml_losses

        super().__init__(pml_losses.SupConLoss(temperature=temperature))
