"""Edge-to-node layers (method.md §3.1 step 2): every edge, same-class and self-loops included,
sends ``g_ij = GELU(W_en w_ij + b_en)`` to its SOURCE node ``i`` (the edges leaving ``i``).

Both built-in layers preserve symmetry: on the pair graph (:mod:`gcahng.graph.pairs`) ``g`` is
computed once per unordered pair and summed at both of its nodes."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

from gcahng.graph.ops import at_least_float32
from gcahng.graph.registries import EDGE_TO_NODE, EdgeToNodeLayer


class _EdgeToSource(EdgeToNodeLayer, MessagePassing):
    preserves_symmetry = True

    def __init__(self, dim: int, aggr: str) -> None:
        # target_to_source: messages are aggregated at edge_index[0], the source
        super().__init__(aggr=aggr, flow="target_to_source")
        self.dim = dim
        self.lin = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim})"

    def forward(self, h: Tensor, w: Tensor, data: Data) -> Tensor:
        B = h.shape[0]
        pairs = getattr(data, "pairs", None)
        if pairs is None:
            return self.propagate(data.edge_index, w=w, size=(B, B))  # (B, D)
        total = pairs.sum_at_nodes(self.message(w))  # (B, D): the complete graph, B edges leave every node
        return total if self.aggr == "add" else total / B

    def message(self, w: Tensor) -> Tensor:
        return at_least_float32(F.gelu(self.lin(w)))  # (E, D), summed in float32 under autocast


@EDGE_TO_NODE.register("sum")
class SumEdgeToNode(_EdgeToSource):
    """``o_i = sum_j GELU(W_en w_ij + b_en)`` (the reference: summed, not averaged).
    ``heads`` and ``dropout`` are not used."""

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__(dim, "add")


@EDGE_TO_NODE.register("mean")
class MeanEdgeToNode(_EdgeToSource):
    """``o_i = mean_j GELU(W_en w_ij + b_en)``. ``heads`` and ``dropout`` are not used."""

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__(dim, "mean")
