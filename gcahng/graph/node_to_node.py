"""Node-to-node layers (method.md §3.1 step 1): messages between nodes of different classes.

Only edges joining different classes take part; same-class edges and self-loops carry no
message. Each layer returns ``o`` (B, D), and the node update applies ``h <- N(h + o)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATv2Conv, MessagePassing

from gcahng.errors import InputError
from gcahng.graph.batch_graph import complete_graph_size
from gcahng.graph.ops import at_least_float32, gather_dot, gather_scale
from gcahng.graph.registries import NODE_TO_NODE, NodeToNodeLayer
from gcahng.graph.softmax import dense_zero_slot_softmax, zero_slot_softmax


def cross_class_edges(data: Data) -> Tensor:
    """(2, E') the edges of ``data`` that join different classes (no self-loops)."""
    return data.edge_index[:, ~data.same_class]


def _check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise InputError(f"embedding size {dim} must be divisible by the number of heads {heads}")


@NODE_TO_NODE.register("attention")
class NodeAttention(NodeToNodeLayer, MessagePassing):
    """Masked multi-head attention with a zero-logit slot (the reference architecture).

    For an edge ``i -> j`` the score of head ``h`` is ``<q_j, k_i> / sqrt(D/H)`` (the target
    asks, the source answers); weights are :func:`zero_slot_softmax` over the cross-class
    edges entering ``j``; ``o_j = W_o concat_h(sum_i a_ij v_i) + b_o``. ``q, k, v`` are projected
    once per node; the per-edge products gather them without keeping (E, D) copies
    (:mod:`gcahng.graph.ops`). ``dropout`` is not used.
    """

    def __init__(self, dim: int, *, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__(aggr="add", node_dim=0)
        _check_heads(dim, heads)
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.lin_q = nn.Linear(dim, dim)
        self.lin_k = nn.Linear(dim, dim)
        self.lin_v = nn.Linear(dim, dim)
        self.lin_out = nn.Linear(dim, dim)
        self._init_projections()

    def _init_projections(self) -> None:
        for lin in (self.lin_q, self.lin_k, self.lin_v, self.lin_out):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def reset_parameters(self) -> None:
        for lin in (self.lin_q, self.lin_k, self.lin_v, self.lin_out):  # the draws of a fresh layer
            lin.reset_parameters()
        self._init_projections()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, heads={self.heads})"

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], self.heads, self.head_dim)  # (N, H, D/H)

    def forward(self, h: Tensor, data: Data) -> Tensor:
        B = h.shape[0]
        q, k, v = self._heads(self.lin_q(h)), self._heads(self.lin_k(h)), self._heads(self.lin_v(h))
        if complete_graph_size(data) == B:
            out = self._dense(q, k, v, data.same_class.view(B, B))
        else:
            out = self.propagate(cross_class_edges(data), q=q, k=k, v=v, size=(B, B))  # (B, H, D/H)
        return self.lin_out(out.reshape(B, -1))

    def _dense(self, q: Tensor, k: Tensor, v: Tensor, same_class: Tensor) -> Tensor:
        """The same weights and messages on the complete batch graph as (H, B, B) matrices: a few
        large operations instead of gathers and scatters over the cross-class edges. ``same_class``
        (B, B) is symmetric, so it masks ``[target, source]`` as it is."""
        heads_first = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (H, B, D/H)
        scores = at_least_float32(heads_first[0] @ heads_first[1].transpose(1, 2)) / math.sqrt(self.head_dim)
        a = dense_zero_slot_softmax(scores, ~same_class)  # (H, B_target, B_source)
        return (a.to(v.dtype) @ heads_first[2]).transpose(0, 1)  # (B, H, D/H): sum_i a_ij v_i

    def _weights(self, q: Tensor, k: Tensor, src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
        scores = at_least_float32(gather_dot(q, k, dst, src)) / math.sqrt(self.head_dim)  # (E', H): <q_dst, k_src>
        return zero_slot_softmax(scores, dst, num_nodes)

    def message(
        self, q: Tensor, k: Tensor, v: Tensor, edge_index_i: Tensor, edge_index_j: Tensor, size_i: int
    ) -> Tensor:
        # q, k, v: (B, H, D/H) node tensors; edge_index_i = target, edge_index_j = source
        a = self._weights(q, k, edge_index_j, edge_index_i, size_i)  # (E', H)
        return gather_scale(a, v, edge_index_j)  # (E', H, D/H): a_ij * v_i

    @torch.no_grad()
    def attention_weights(self, h: Tensor, data: Data) -> Tensor:
        """(E, H) weights of every edge of ``data`` (exactly 0 on same-class edges and self-loops)."""
        q, k = self._heads(self.lin_q(h)), self._heads(self.lin_k(h))
        cross = ~data.same_class
        src, dst = data.edge_index[:, cross]
        weights = q.new_zeros(data.edge_index.shape[1], self.heads)
        weights[cross] = self._weights(q, k, src, dst, h.shape[0])
        return weights


@NODE_TO_NODE.register("gat")
class GATNodeToNode(NodeToNodeLayer):
    """PyG's ``GATv2Conv`` (``H`` heads of size ``D/H``, concatenated) on the cross-class edges.
    ``dropout`` is not used."""

    def __init__(self, dim: int, *, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        _check_heads(dim, heads)
        self.dim, self.heads = dim, heads
        self.conv = GATv2Conv(dim, dim // heads, heads=heads, add_self_loops=False)

    def reset_parameters(self) -> None:
        for lin in (self.conv.lin_l, self.conv.lin_r):  # the draws of GATv2Conv's constructor,
            lin.reset_parameters()
        self.conv.reset_parameters()  # then its own reset, as in a fresh layer

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, heads={self.heads})"

    def forward(self, h: Tensor, data: Data) -> Tensor:
        return self.conv(h, cross_class_edges(data))


@NODE_TO_NODE.register("mean")
class MeanNodeToNode(NodeToNodeLayer, MessagePassing):
    """Uniform attention: ``o_j = W_o mean_{i cross-class} W_v h_i + b_o``. ``heads`` and
    ``dropout`` are not used."""

    def __init__(self, dim: int, *, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__(aggr="mean")
        self.dim = dim
        self.lin_v = nn.Linear(dim, dim)
        self.lin_out = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        for lin in (self.lin_v, self.lin_out):
            lin.reset_parameters()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim})"

    def forward(self, h: Tensor, data: Data) -> Tensor:
        B = h.shape[0]
        return self.lin_out(self.propagate(cross_class_edges(data), v=self.lin_v(h), size=(B, B)))

    def message(self, v_j: Tensor) -> Tensor:
        return v_j
