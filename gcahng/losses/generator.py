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


def diversity_loss(lam: Tensor, graph: Data) -> Tensor:
    """``J_div = 0.01 * (1 - sqrt(sum_ij ||lam_ij - mean_j' lam_ij'||^2 / E))``.

    ``lam``: (E, D) on the edges of ``graph``, which must be the complete row-major batch graph
    (rows grouped by source node, E = B*B; checked by :func:`~gcahng.graph.check_row_major`).
    """
    num_nodes = check_row_major(graph, lam, "the diversity loss J_div").num_nodes
    per_source = lam.view(num_nodes, num_nodes, -1)
    spread = (per_source - per_source.mean(dim=1, keepdim=True)).pow(2).sum() / lam.shape[0]
    return 0.01 * (1.0 - spread.clamp_min(1e-12).sqrt())


def generator_loss(
    z: Tensor,
    lam: Tensor,
    negatives: SyntheticNegatives,
    classifier_logits: Tensor,
    weights: LossWeights,
    *,
    graph: Data,
) -> dict[str, Tensor]:
    """All generator terms: ``{"J_soft", "J_sim", "J_div", "J_gen"}``, with
    ``J_gen = 0.5 * (softmax_weight * J_soft + w_dot * J_sim + w_div * J_div)``; ``lam`` (E, D)
    on the edges of ``graph``."""
    j_soft = label_preserving_loss(classifier_logits, negatives)
    j_sim = hardness_loss(z, negatives)
    j_div = diversity_loss(lam, graph)
    j_gen = 0.5 * (weights.softmax_weight * j_soft + weights.w_dot * j_sim + weights.w_div * j_div)
    return {"J_soft": j_soft, "J_sim": j_sim, "J_div": j_div, "J_gen": j_gen}
