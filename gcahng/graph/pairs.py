"""Symmetric edges computed once: the ``B(B+1)/2`` unordered pairs of the complete batch graph.

The initial correlations are symmetric (``w_ij = w_ji``) and the reference layers keep them so
(:mod:`gcahng.graph.registries`), so GCL can compute one row per unordered pair ``{i, j}`` and
expand to the ``B^2`` ordered edges only where an ordered edge is needed. Here: the pair
indexing (:class:`UnorderedPairs`), the pair view of a batch graph (:func:`pair_graph`) and
BatchNorm over the ordered edges applied to the pairs (:func:`pair_batch_norm`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gcahng.graph.batch_graph import complete_graph_size


@dataclass(frozen=True)
class UnorderedPairs:
    """The unordered pairs of ``B`` nodes, self-pairs included: ``P = B(B+1)/2`` rows, the ``B``
    self-pairs ``(i, i)`` first, then the pairs ``(i, j)``, ``i < j``, ``i`` outer.

    Attributes:
        num_nodes: ``B``.
        edge_index: (2, P) ``[i; j]`` of each pair, ``i <= j``.
        ordered_edge: (P,) the row-major ordered edge ``i*B + j`` of each pair.
        edge_pair: (B*B,) the pair of each ordered edge ``e = i*B + j`` (``ij`` and ``ji`` share it).
    """

    num_nodes: int
    edge_index: Tensor
    ordered_edge: Tensor
    edge_pair: Tensor

    @classmethod
    def build(cls, num_nodes: int, device: torch.device | None = None) -> UnorderedPairs:
        B = num_nodes
        idx = torch.arange(B, device=device)
        upper = torch.triu_indices(B, B, offset=1, device=device)  # (2, B(B-1)/2), i outer
        edge_index = torch.cat([torch.stack([idx, idx]), upper], dim=1)
        pair_of = torch.empty(B, B, dtype=torch.long, device=device)
        pair_ids = torch.arange(edge_index.shape[1], device=device)
        pair_of[edge_index[0], edge_index[1]] = pair_ids
        pair_of[edge_index[1], edge_index[0]] = pair_ids
        return cls(B, edge_index, edge_index[0] * B + edge_index[1], pair_of.flatten())

    @property
    def num_pairs(self) -> int:
        return self.edge_index.shape[1]

    @property
    def num_edges(self) -> int:
        """``B^2``, the ordered edges the pairs stand for."""
        return self.num_nodes * self.num_nodes

    def expand(self, x: Tensor) -> Tensor:
        """Pair rows (P, ...) -> ordered-edge rows (B*B, ...) in row-major order."""
        return x.index_select(0, self.edge_pair)

    def sum_at_nodes(self, x: Tensor) -> Tensor:
        """``o_i = sum_j x_{ij}`` over the ordered edges leaving each node, from pair rows ``x``
        (P, ...): a self-pair counts once at its node, any other pair at both of its nodes. (B, ...)."""
        B = self.num_nodes
        out = x.new_zeros((B, *x.shape[1:])).index_add(0, self.edge_index[0], x)
        return out.index_add(0, self.edge_index[1, B:], x[B:])

    def sum_over_edges(self, x: Tensor) -> Tensor:
        """``sum_e x_e`` over the ordered edges, from pair rows (P, ...) -> (...)."""
        B = self.num_nodes
        return x[:B].sum(0) + 2 * x[B:].sum(0)


@functools.lru_cache(maxsize=16)
def _shared_pairs(num_nodes: int, device: torch.device) -> UnorderedPairs:
    # the indexing depends on B alone: built once per size and device (its tensors are only read)
    return UnorderedPairs.build(num_nodes, device)


def pair_graph(data: Data) -> Data | None:
    """The pair view of a batch graph, or ``None`` when ``data`` is not the complete row-major
    graph of :func:`~gcahng.graph.build_batch_graph` with symmetric ``edge_attr`` (then its edges
    cannot be computed per pair).

    Returns a ``Data`` with ``x``, ``y``, ``edge_index`` (2, P) and ``edge_attr`` (P, D) of the
    pairs, ``same_class`` (P,) and ``pairs``, the :class:`UnorderedPairs` (built once per ``B`` and
    device and shared by every call: its index tensors are read, never modified in place).
    """
    B = complete_graph_size(data)
    if B is None:
        return None
    edge_index, w = data.edge_index, data.edge_attr
    if w is None or w.dim() != 2 or w.shape[0] != B * B:
        return None
    square = w.view(B, B, -1)
    if not torch.equal(square, square.transpose(0, 1)):
        return None
    pairs = _shared_pairs(B, edge_index.device)
    return Data(x=data.x, y=data.y, edge_index=pairs.edge_index, edge_attr=w.index_select(0, pairs.ordered_edge),
                same_class=data.same_class.index_select(0, pairs.ordered_edge), pairs=pairs, num_nodes=B)


def pair_batch_norm(bn: nn.BatchNorm1d, x: Tensor, pairs: UnorderedPairs) -> Tensor:
    """``bn`` applied to the ordered edges, from their pair rows ``x`` (P, D) -> (P, D).

    The ``B^2`` ordered rows hold each self-pair once and every other pair twice, so ``bn`` runs
    on the pair rows with the other pairs repeated, ``(2P - B, D)``: the same rows as the ordered
    edges, hence the same batch statistics and running-statistics update (in training mode, or
    without running statistics). In evaluation mode the running statistics are used, as ``bn(x)`` does.
    """
    if not bn.training and bn.running_mean is not None:
        return bn(x)
    return bn(torch.cat((x, x[pairs.num_nodes:])))[: x.shape[0]]
