"""Losses that train the hard-negative generator: ``J_gen`` and its terms (method.md §5)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from gcahng.cacai import SyntheticNegatives
from gcahng.graph.batch_graph import check_row_major
from gcahng.hyperparameters import LossWeights


def label_preserving_loss(logits: Tensor, negatives: SyntheticNegatives) -> Tensor:
    """``J_soft``: cross-entropy of ``W_s zhat`` (logits, (m*C*C, K)) against the class of slot ``n``."""
    return F.cross_entropy(logits, negatives.labels)


def hardness_loss(z: Tensor, negatives: SyntheticNegatives) -> Tensor:
    """``J_sim``: mean over ALL rows of ``1 - cos(z_a, zhat)``, own-class rows counted as 0."""
    cos = F.cosine_similarity(z[negatives.anchor_index], negatives.embeddings, dim=1)
    return torch.where(negatives.own_class, torch.zeros_like(cos), 1.0 - cos).mean()


def source_spread(lam: Tensor, num_sources: int) -> Tensor:
    """``sum_ij ||lam_ij - mean_j' lam_ij'||^2`` (scalar) of ``lam`` (num_sources * N, D), rows grouped by source."""
    per_source = lam.view(num_sources, lam.shape[0] // num_sources, -1)
    return (per_source - per_source.mean(dim=1, keepdim=True)).pow(2).sum()


def diversity_from_spread(spread: Tensor, num_edges: int) -> Tensor:
    """``J_div = 0.01 * (1 - sqrt(spread / E))`` from :func:`source_spread` summed over all sources."""
    return 0.01 * (1.0 - (spread / num_edges).clamp_min(1e-12).sqrt())


def diversity_loss(lam: Tensor, graph: Data) -> Tensor:
    """``J_div = 0.01 * (1 - sqrt(sum_ij ||lam_ij - mean_j' lam_ij'||^2 / E))``.

    ``lam``: (E, D) on the edges of ``graph``, which must be the complete row-major batch graph
    (rows grouped by source node, E = B*B; checked by :func:`~gcahng.graph.check_row_major`).
    """
    num_nodes = check_row_major(graph, lam, "the diversity loss J_div").num_nodes
    return diversity_from_spread(source_spread(lam, num_nodes), lam.shape[0])


def combine_generator_terms(j_soft: Tensor, j_sim: Tensor, j_div: Tensor, weights: LossWeights) -> dict[str, Tensor]:
    """``{"J_soft", "J_sim", "J_div", "J_gen"}`` with
    ``J_gen = 0.5 * (softmax_weight * J_soft + w_dot * J_sim + w_div * J_div)``."""
    j_gen = 0.5 * (weights.softmax_weight * j_soft + weights.w_dot * j_sim + weights.w_div * j_div)
    return {"J_soft": j_soft, "J_sim": j_sim, "J_div": j_div, "J_gen": j_gen}


def generator_loss(
    z: Tensor,
    lam: Tensor,
    negatives: SyntheticNegatives,
    classifier_logits: Tensor,
    weights: LossWeights,
    *,
    graph: Data,
) -> dict[str, Tensor]:
    """All generator terms (:func:`combine_generator_terms`); ``lam`` (E, D) on the edges of ``graph``."""
    j_soft = label_preserving_loss(classifier_logits, negatives)
    j_sim = hardness_loss(z, negatives)
    return combine_generator_terms(j_soft, j_sim, diversity_loss(lam, graph), weights)
