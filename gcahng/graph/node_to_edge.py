"""Node-to-edge layers (method.md §3.2 step 2): each edge gathers a message from its two
endpoints. Node projections run once per node and are gathered per edge (PyG's
``edge_updater``); in PyG's naming ``_j`` is the source ``edge_index[0]`` and ``_i`` the target."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

from gcahng.graph.ops import gather_dot, gather_scale
from gcahng.graph.registries import NODE_TO_EDGE, NodeToEdgeLayer


@NODE_TO_EDGE.register("attention")
class EdgeAttention(NodeToEdgeLayer, MessagePassing):
    """Single-head attention of an edge over its two endpoints (the reference architecture).

    ``n = GELU(W_ne h + b_ne)``; query ``W_q' w_ij``, keys ``W_k' n_i``, ``W_k' n_j``, values
    likewise; ``(alpha_i, alpha_j) = softmax(<q, k_i>, <q, k_j>) / sqrt(D)``, dropout on the two
    weights in training mode; ``a_ij = alpha_i v_i + alpha_j v_j``.

    The query projection is folded onto the nodes, ``<W_q' w + b, k> = <w, W_q'^T k> + <b, k>``,
    so no (E, D) query is formed, and the per-edge products keep only node tensors for backward.
    ``heads`` is not used (single head). Preserves symmetry: swapping the endpoints swaps the two
    weights and the two values, so ``a_ij = a_ji`` exactly whenever ``w_ij = w_ji``.
    """

    preserves_symmetry = True

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.dim = dim
        self.scale = 1.0 / math.sqrt(dim)
        self.lin_node = nn.Linear(dim, dim)  # W_ne, PyTorch default init
        self.lin_q = nn.Linear(dim, dim)
        self.lin_k = nn.Linear(dim, dim)
        self.lin_v = nn.Linear(dim, dim)
        self._init_projections()
        self.dropout = nn.Dropout(dropout)

    def _init_projections(self) -> None:
        for lin in (self.lin_q, self.lin_k, self.lin_v):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def reset_parameters(self) -> None:
        for lin in (self.lin_node, self.lin_q, self.lin_k, self.lin_v):  # the draws of a fresh layer
            lin.reset_parameters()
        self._init_projections()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, dropout={self.dropout.p})"

    def forward(self, h: Tensor, w: Tensor, data: Data) -> Tensor:
        n = F.gelu(self.lin_node(h))  # (B, D)
        k = self.lin_k(n)  # (B, D)
        return self.edge_updater(
            data.edge_index, k_q=k @ self.lin_q.weight, k_b=k @ self.lin_q.bias, v=self.lin_v(n), w=w
        )

    def endpoint_weights(self, k_q: Tensor, k_b: Tensor, w: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        """(E, 2) softmax weights of (source, target) before dropout.

        ``k_q = W_q'^T k`` (B, D) and ``k_b = <b_q', k>`` (B,) per node; ``w`` (E, D).
        """
        scores = torch.stack(
            [gather_dot(w, k_q, None, src) + k_b[src], gather_dot(w, k_q, None, dst) + k_b[dst]], dim=-1
        )
        return (scores * self.scale).softmax(dim=-1)

    def edge_update(
        self, k_q: Tensor, k_b: Tensor, v: Tensor, w: Tensor, edge_index_i: Tensor, edge_index_j: Tensor
    ) -> Tensor:
        src, dst = edge_index_j, edge_index_i
        alpha = self.dropout(self.endpoint_weights(k_q, k_b, w, src, dst))  # (E, 2)
        return gather_scale(alpha[:, 0], v, src) + gather_scale(alpha[:, 1], v, dst)  # (E, D)


@NODE_TO_EDGE.register("mlp")
class MLPNodeToEdge(NodeToEdgeLayer, MessagePassing):
    """``a_ij = GELU(P n_i + Q n_j + R w_ij + b)`` with ``n = GELU(W_ne h + b_ne)``: no attention.
    ``heads`` and ``dropout`` are not used. Does not preserve symmetry (``P != Q``)."""

    preserves_symmetry = False

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.lin_node = nn.Linear(dim, dim)
        self.lin_src = nn.Linear(dim, dim, bias=False)
        self.lin_dst = nn.Linear(dim, dim, bias=False)
        self.lin_edge = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        for lin in (self.lin_node, self.lin_src, self.lin_dst, self.lin_edge):
            lin.reset_parameters()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim})"

    def forward(self, h: Tensor, w: Tensor, data: Data) -> Tensor:
        n = F.gelu(self.lin_node(h))
        return self.edge_updater(data.edge_index, src=self.lin_src(n), dst=self.lin_dst(n), w=w)

    def edge_update(self, src_j: Tensor, dst_i: Tensor, w: Tensor) -> Tensor:
        return F.gelu(src_j + dst_i + self.lin_edge(w))
