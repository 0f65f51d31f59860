"""Losses of GCA-HNG (method.md §5). Metric losses are chosen by name from ``METRIC_LOSSES``."""
from gcahng.losses.base import MetricLoss
from gcahng.losses.generator import (
    diversity_loss,
    generator_loss,
    hardness_loss,
    label_preserving_loss,
)
from gcahng.losses.npair import NPairLoss
from gcahng.losses.pml import MultiSimilarityLoss, TripletMarginLoss
from gcahng.losses.proxy_anchor import ProxyAnchorLoss
from gcahng.losses.registry import METRIC_LOSSES
from gcahng.losses.regularization import L2_WEIGHT, l2_per_row
from gcahng.losses.synthetic_adapter import SyntheticNegativeAdapter, anchor_specific_pairs

__all__ = [
    "METRIC_LOSSES", "MetricLoss", "NPairLoss", "L2_WEIGHT", "l2_per_row",
    "generator_loss", "label_preserving_loss", "hardness_loss", "diversity_loss",
]
__all__ += ["MultiSimilarityLoss", "TripletMarginLoss", "ProxyAnchorLoss", "SyntheticNegativeAdapter",
            "anchor_specific_pairs"]
