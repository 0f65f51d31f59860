"""GCL, Global Correlation Learning (method.md §3): ``K`` iterations of node and edge
message passing over the batch graph, then the interpolation-vector and node-class read-outs.

When every edge layer preserves symmetry (:mod:`gcahng.graph.registries`) the edge states are
computed once per unordered pair (:mod:`gcahng.graph.pairs`) and ``lambda`` is expanded to the
ordered edges at the end; the results are those of the ordered computation."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.data import Data

from gcahng.choices import EDGE_DROPOUTS
from gcahng.errors import InputError

# importing the layer modules registers the built-in layers
from gcahng.graph import edge_to_node as _edge_to_node  # noqa: F401
from gcahng.graph import node_to_edge as _node_to_edge  # noqa: F401
from gcahng.graph import node_to_node as _node_to_node  # noqa: F401
from gcahng.graph.ops import at_least_float32
from gcahng.graph.pairs import pair_batch_norm, pair_graph
from gcahng.graph.registries import EDGE_TO_NODE, NODE_TO_EDGE, NODE_TO_NODE, Skip, reset_parameters_in_order
from gcahng.hyperparameters import GCLConfig

#: The GELU-LayerNorm blocks on the edge rows recompute in backward only for inputs of at least
#: this many bytes: below it the two kept outputs cost little memory and the recomputation costs
#: time. (B = 81, D = 512: 6.8 MB, recomputed; the digits default, 210 pairs x 256: 0.2 MB, kept.)
RECOMPUTE_MIN_BYTES = 4 * 2**20


class GeluNorm(nn.Module):
    """``N(x) = LayerNorm(GELU(x))``; one instance is shared by all places of a layer.

    With ``recompute=True`` (used on the E edge rows) an input of at least
    :data:`RECOMPUTE_MIN_BYTES` keeps only itself for the backward pass and the cheap GELU and
    LayerNorm are recomputed there, instead of keeping both the GELU output and the normalised
    output. The values are the same either way.
    """

    def __init__(self, dim: int, recompute: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.recompute = recompute

    def _apply_norm(self, x: Tensor) -> Tensor:
        return self.norm(F.gelu(x))

    def forward(self, x: Tensor) -> Tensor:
        if (self.recompute and torch.is_grad_enabled() and x.requires_grad
                and x.numel() * x.element_size() >= RECOMPUTE_MIN_BYTES):
            return checkpoint(self._apply_norm, x, use_reentrant=False)
        return self._apply_norm(x)


class NodeUpdate(nn.Module):
    """§3.1: ``h <- N(h + node_to_node)``, ``h <- N(h + edge_to_node)``, ``h <- N(h + FFN(h))``."""

    def __init__(self, dim: int, node_to_node: str, edge_to_node: str, heads: int) -> None:
        super().__init__()
        self.node_to_node = NODE_TO_NODE.get(node_to_node)(dim, heads=heads, dropout=0.0)
        self.edge_to_node = EDGE_TO_NODE.get(edge_to_node)(dim, heads=heads, dropout=0.0)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.norm = GeluNorm(dim)

    def forward(self, h: Tensor, w: Tensor, data: Data, edges: Data | None = None) -> Tensor:
        """``data``: the batch graph; ``edges``: the graph ``w``'s rows follow (default ``data``; the pair graph)."""
        o = self.node_to_node(h, data)
        if o is not None:
            h = self.norm(h + o)
        o = self.edge_to_node(h, w, data if edges is None else edges)
        if o is not None:
            h = self.norm(h + o)
        return self.norm(h + self.ffn(h))  # (B, D)


class EdgeUpdate(nn.Module):
    """§3.2: ``w <- N(a + w)``, ``w <- N(w + F(w))`` with ``F = W_4 LN_4D(GELU(W_3 w))``.

    ``ffn`` is ``[W_3, LN_4D(GELU(.)), W_4]``; both GELU-LayerNorm blocks recompute in backward.

    With the ``none`` node-to-edge layer the edges are not updated at all: they keep their
    current features (the initial correlations), and no feed-forward is built.
    """

    def __init__(self, dim: int, node_to_edge: str, heads: int, dropout: float) -> None:
        super().__init__()
        self.node_to_edge = NODE_TO_EDGE.get(node_to_edge)(dim, heads=heads, dropout=dropout)
        self.updates_edges = not isinstance(self.node_to_edge, Skip)
        if self.updates_edges:
            self.ffn = nn.Sequential(
                nn.Linear(dim, 4 * dim), GeluNorm(4 * dim, recompute=True), nn.Linear(4 * dim, dim)
            )
            self.norm = GeluNorm(dim, recompute=True)

    def forward(self, h: Tensor, w: Tensor, data: Data) -> Tensor:
        a = self.node_to_edge(h, w, data)
        if a is None:
            return w
        w = self.norm(a + w)
        return self.norm(w + self.ffn(w))  # (E, D)


class GCLIteration(nn.Module):
    """One iteration: nodes first (with the current edges), then edges (with the new nodes)."""

    def __init__(
        self, dim: int, heads: int, node_to_node: str, edge_to_node: str, node_to_edge: str, dropout: float
    ) -> None:
        super().__init__()
        self.node_update = NodeUpdate(dim, node_to_node, edge_to_node, heads)
        self.edge_update = EdgeUpdate(dim, node_to_edge, heads, dropout)

    def forward(self, h: Tensor, w: Tensor, data: Data, edges: Data | None = None,
                edge_grad: bool = True) -> tuple[Tensor, Tensor]:
        """``edges``: the graph whose edges ``w`` (rows, D) follows, ``data`` itself by default
        (or its pair graph, :func:`~gcahng.graph.pairs.pair_graph`). ``edge_grad=False``: the edge
        update runs without autograd (its output is then not differentiable)."""
        h = self.node_update(h, w, data, edges)
        with contextlib.nullcontext() if edge_grad else torch.no_grad():
            return h, self.edge_update(h, w, data if edges is None else edges)

    @property
    def preserves_symmetry(self) -> bool:
        """Whether both edge layers declare ``preserves_symmetry`` (a plain module does not)."""
        return all(getattr(layer, "preserves_symmetry", False)
                   for layer in (self.node_update.edge_to_node, self.edge_update.node_to_edge))


def _frozen_zero_bias_bn(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim)  # weight 1, bias 0
    bn.bias.requires_grad_(False)
    return bn


class GCL(nn.Module):
    """Global Correlation Learning over a batch graph.

    Args:
        dim: embedding size ``D`` (node and edge feature size).
        num_classes: number of training classes of the node classifier.
        config: ``K`` iterations, ``H`` heads (``dim % heads == 0``), the layer names, the
            dropout and how it is drawn (:class:`~gcahng.hyperparameters.GCLConfig`; the defaults
            are the reference layers, with ``edge_dropout="paired"``).
    ``forward(data) -> (lam, node_logits)``: ``lam`` (E, D) in ``(0, 1)`` in the edge order of
    ``data.edge_index``; ``node_logits`` (B, num_classes). ``forward(data, lambda_grad=False)``
    returns the same values with ``lam`` not differentiable: for a caller that detaches it (the
    first pass of a training step), the last edge update and the read-out then run without
    autograd, since no gradient of theirs could reach a loss. ``data`` may also be one rank's
    :class:`~gcahng.distributed.graph.RowsGraph` of a graph over all ranks: then ``lam`` and
    ``node_logits`` are the rows of that rank's nodes (:func:`~gcahng.distributed.graph.gcl_rows`);
    such a graph always takes the ordered computation.

    The edges are computed once per unordered pair (half the work and memory) when every layer
    preserves symmetry, ``data`` is the complete row-major graph with symmetric ``edge_attr``, and
    the module is in evaluation mode or ``edge_dropout`` is ``paired``; otherwise all ``B^2``
    ordered edges are (with ``independent``: the reference's dropout draws in training).
    """

    def __init__(self, dim: int, num_classes: int, config: GCLConfig = GCLConfig()) -> None:
        super().__init__()
        iterations, heads = config.iterations, config.heads
        if iterations < 1:
            raise InputError(f"GCL iterations must be >= 1, got {iterations}")
        if num_classes < 1:
            raise InputError(f"num_classes must be >= 1, got {num_classes}")
        if heads < 1 or dim % heads:
            raise InputError(f"embedding size {dim} must be divisible by the number of heads {heads}")
        if config.edge_dropout not in EDGE_DROPOUTS:
            raise InputError(f"unknown edge dropout {config.edge_dropout!r}; choose one of {', '.join(EDGE_DROPOUTS)}")
        self.dim, self.num_classes, self.edge_dropout = dim, num_classes, config.edge_dropout
        self.reduce = nn.Linear(dim, dim)  # W_red
        self.layers = nn.ModuleList(
            GCLIteration(dim, heads, config.node_to_node, config.edge_to_node, config.node_to_edge, config.dropout)
            for _ in range(iterations)
        )
        self.edge_bn = _frozen_zero_bias_bn(dim)  # BN_e
        self.edge_readout = nn.Linear(dim, dim)  # W_lam
        self.node_bn = _frozen_zero_bias_bn(dim)  # BN_n
        self.node_classifier = nn.Linear(dim, num_classes)  # W_cls

    def reset_parameters(self) -> None:
        """Re-draw every parameter (and the BatchNorm statistics) as a freshly built GCL would."""
        reset_parameters_in_order(self)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_classes={self.num_classes}, iterations={len(self.layers)}, "
                f"edge_dropout={self.edge_dropout!r}")

    def pair_graph(self, data: Data) -> Data | None:
        """The pair graph this module computes ``data``'s edges on now, or ``None`` for all ordered edges."""
        if self.training and self.edge_dropout == "independent":
            return None
        if not all(layer.preserves_symmetry for layer in self.layers):
            return None
        return pair_graph(data)

    def forward(self, data: Data, lambda_grad: bool = True) -> tuple[Tensor, Tensor]:
        if getattr(data, "spans_ranks", False):  # a rank's rows of a graph over all ranks
            from gcahng.distributed.graph import gcl_rows

            lam, node_logits = gcl_rows(self, data)
            return (lam if lambda_grad else lam.detach()), node_logits
        if data.x.shape[1] != self.dim:
            raise InputError(f"graph node features have size {data.x.shape[1]}, GCL expects {self.dim}")
        h = self.reduce(data.x)  # (B, D)
        edges = self.pair_graph(data)
        w = data.edge_attr if edges is None else edges.edge_attr  # (E, D), or (P, D): one row per pair
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h, w = layer(h, w, data, edges, edge_grad=lambda_grad or i < last)
        with contextlib.nullcontext() if lambda_grad else torch.no_grad():
            if edges is None:
                w = self.edge_bn(w)
            else:
                w = pair_batch_norm(self.edge_bn, w, edges.pairs)
            # float32 out of a lower-precision autocast region: CACAI and the losses need it
            lam = torch.sigmoid(at_least_float32(self.edge_readout(w)))  # (E, D) or (P, D)
            if edges is not None:
                lam = edges.pairs.expand(lam)  # (P, D) -> (E, D)
        return lam, at_least_float32(self.node_classifier(self.node_bn(h)))  # (B, num_classes)
