"""Softmax over the incoming edges of each node with an extra logit fixed at zero."""
from __future__ import annotations

from torch import Tensor
from torch_geometric.utils import scatter


def zero_slot_softmax(scores: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """``a_e = exp(s_e) / (1 + sum_{e' -> same target} exp(s_e'))``, computed stably.

    The ``1`` is a "no message" slot: a node whose incoming scores are all very negative
    receives (almost) nothing. Stabilised by subtracting ``M = max(0, max s)`` per target.

    Args:
        scores: (E, ...) one score per edge (and head).
        index: (E,) target node of each edge.
        num_nodes: number of target nodes.
    Returns:
        (E, ...) weights; per target they sum to ``1 - exp(-M) / denominator < 1``.
    """
    node_max = scatter(scores.detach(), index, dim=0, dim_size=num_nodes, reduce="max")
    node_max = node_max.clamp_min(0.0)  # (N, ...): the zero slot takes part in the maximum
    expd = (scores - node_max[index]).exp()  # (E, ...)
    denom = (-node_max).exp() + scatter(expd, index, dim=0, dim_size=num_nodes, reduce="sum")
    return expd / denom[index]


def dense_zero_slot_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """:func:`zero_slot_softmax` on a dense score matrix: row ``j`` of ``scores`` holds the scores
    of the edges entering ``j``, and only the entries where ``mask`` is true are edges.

    Args:
        scores: (..., N, M) scores, ``[..., target, source]``.
        mask: (N, M) bool, true where the edge ``source -> target`` exists.
    Returns:
        (..., N, M) weights, exactly 0 where ``mask`` is false.
    """
    scores = scores.masked_fill(~mask, float("-inf"))
    top = scores.detach().amax(dim=-1, keepdim=True).clamp_min(0.0)  # the zero slot takes part
    expd = (scores - top).exp()
    return expd / ((-top).exp() + expd.sum(dim=-1, keepdim=True))
