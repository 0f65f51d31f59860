"""A user's plugin module, outside the package: registers a node-to-node layer for ``--plugin``."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gcahng.graph import NODE_TO_NODE


@NODE_TO_NODE.register("plugin_counting_mean")
class CountingMean(nn.Module):
    """``o_j = W mean_{i != class(j)} h_i`` over the cross-class edges; counts its calls."""

    calls = 0

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, h: Tensor, data: Data) -> Tensor:  # h: (B, D) -> (B, D)
        type(self).calls += 1
        src, dst = data.edge_index[:, ~data.same_class]
        total = torch.zeros_like(h).index_add_(0, dst, h[src])
        count = torch.zeros(h.shape[0], 1, dtype=h.dtype, device=h.device).index_add_(
            0, dst, torch.ones(dst.shape[0], 1, dtype=h.dtype, device=h.device))
        return self.lin(total / count.clamp(min=1))
