"""One rank's rows of the batch graph over all ranks, and GCL on those rows (issue 14, item 3).

Rank ``r`` owns its ``B_l = m*C_local`` nodes and the edges LEAVING them: ``B_l * B`` edges
``e = i*B + j`` (``i`` its ``i``-th own node, ``j`` any global node), i.e. the rows of the
global row-major edge list whose source is one of its nodes. GCL on these rows
(:func:`gcl_rows`) computes exactly the global GCL's values on them:

- node-to-node (``h_j`` asks every source ``i``): the layer runs on the gathered global node
  states over the edges ENTERING the own nodes, and the own nodes' rows are kept;
- edge-to-node (over edges leaving ``i``) and node-to-edge (edge ``i -> j`` asks ``h_i``,
  ``h_j``): the layer runs on the gathered global node states over the own edges;
- feed-forwards and LayerNorms: row-wise, on the own rows;
- ``BN_e`` and ``BN_n``: global statistics (:mod:`gcahng.distributed.norm`).

So node states are exchanged (all-gathered with gradient) before each of the three
message-passing sub-steps of an iteration, edge memory per rank is ``B_l * B * D`` instead of
``B * B * D``, and the node projections (``B x D`` rows) run on every rank for all nodes. Any
registered layer works unchanged: it sees a graph in global node numbering whose edges are a
subset of the complete graph's. The sequence mirrors ``NodeUpdate``/``EdgeUpdate``/``GCL.forward``
in :mod:`gcahng.graph.gcl` (the distributed tests check the two give the same numbers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

from gcahng.distributed.collectives import gather_chunk_major, own_nodes
from gcahng.distributed.context import DistContext
from gcahng.errors import InputError
from gcahng.graph.batch_graph import NORM_EPS, check_chunk_major

#: ``RowsLayout.kind``: the rows whose source is one of the rank's nodes, ``e = i*B + j``.
OWN_ROWS = "own-source-rows-of-complete-row-major"


@dataclass(frozen=True)
class RowsLayout:
    """Layout of a :class:`RowsGraph`: ``B`` global nodes of a ``C x m`` batch, source rows of
    class slots ``[slot_start, slot_stop)`` in every chunk."""

    kind: str
    num_nodes: int
    classes_per_batch: int
    per_class: int
    slot_start: int
    slot_stop: int


@dataclass
class RowsGraph:
    """This rank's part of the global batch graph.

    Attributes:
        x: (B_l, D) own embeddings (local chunk-major order).
        x_all: (B, D) all embeddings, global chunk-major (gathered with gradient).
        edge_attr: (B_l*B, D) channel correlations ``w_ij``, own source ``i``, any ``j``.
        outgoing: ``Data`` with ``edge_index`` (2, B_l*B) = (global ``i``, ``j``) of the own edges
            and ``same_class``; what edge-to-node and node-to-edge layers see.
        incoming: ``Data`` with the edges ``j -> i`` entering the own nodes (the transpose);
            what node-to-node layers see.
        own: (B_l,) global indices of the own nodes.
        y_all: (B,) global labels. layout: the :class:`RowsLayout`. dist: the context.
    """

    x: Tensor
    x_all: Tensor
    edge_attr: Tensor
    outgoing: Data
    incoming: Data
    own: Tensor
    y_all: Tensor
    layout: RowsLayout
    dist: DistContext
    #: read by ``GCL.forward``: run :func:`gcl_rows` instead of the single-graph forward
    spans_ranks = True

    def gather(self, h: Tensor) -> Tensor:
        """(B, ...) global chunk-major states from this rank's (B_l, ...) ones, with gradient."""
        return gather_chunk_major(h, self.dist, self.layout.per_class)


def _unit_centred(z: Tensor) -> Tensor:
    u = z - z.mean(dim=1, keepdim=True)
    return u / u.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)


def build_rows_graph(
    z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int, ctx: DistContext, z_all: Tensor | None = None
) -> RowsGraph:
    """This rank's rows of the batch graph of the global batch (method.md §2).

    Args:
        z: (m*C_local, D) own embeddings, chunk-major; ``labels`` (m*C_local,) likewise.
        classes_per_batch: the LOCAL ``C_local``; ``C = W * C_local``.
        z_all: the gathered global batch when the caller has it already (else gathered here).
    """
    m, local = per_class, classes_per_batch
    check_chunk_major(labels, local, m)
    if not bool(torch.isfinite(z).all()):
        raise InputError("embeddings contain NaN or infinite values")
    C = local * ctx.world_size
    B = C * m
    z_all = gather_chunk_major(z, ctx, m) if z_all is None else z_all
    y_all = gather_chunk_major(labels, ctx, m)
    check_chunk_major(y_all, C, m)
    own = own_nodes(ctx, C, m, z.device)
    u, u_all = _unit_centred(z), _unit_centred(z_all)
    edge_attr = (u.unsqueeze(1) * u_all.unsqueeze(0)).reshape(own.numel() * B, -1)  # (B_l*B, D)
    src = own.repeat_interleave(B)
    dst = torch.arange(B, device=z.device).repeat(own.numel())
    same_class = y_all[src] == y_all[dst]
    outgoing = Data(edge_index=torch.stack([src, dst]), same_class=same_class, num_nodes=B)
    incoming = Data(edge_index=torch.stack([dst, src]), same_class=same_class, num_nodes=B)
    layout = RowsLayout(OWN_ROWS, B, C, m, ctx.rank * local, (ctx.rank + 1) * local)
    return RowsGraph(z, z_all, edge_attr, outgoing, incoming, own, y_all, layout, ctx)


def check_rows(graph: object, lam: Tensor, consumer: str) -> RowsLayout:
    """The graph's :class:`RowsLayout` after checking ``lam`` has one row per own edge."""
    layout = getattr(graph, "layout", None)
    if not isinstance(layout, RowsLayout) or layout.kind != OWN_ROWS:
        raise InputError(f"{consumer} with anchor slots needs a rank's RowsGraph (build_rows_graph)")
    rows = (layout.slot_stop - layout.slot_start) * layout.per_class * layout.num_nodes
    if lam.dim() != 2 or lam.shape[0] != rows:
        raise InputError(f"{consumer} needs lambda of shape ({rows}, D) on the rank's rows, got {tuple(lam.shape)}")
    return layout


def gcl_rows(gcl, graph: RowsGraph) -> tuple[Tensor, Tensor]:
    """GCL (:class:`gcahng.graph.GCL`) on this rank's rows: ``(lam (B_l*B, D), node_logits (B_l, K))``.

    ``BN_e``/``BN_n`` must use global statistics (:func:`gcahng.distributed.norm.use_global_statistics`).
    """
    if graph.x.shape[1] != gcl.dim:
        raise InputError(f"graph node features have size {graph.x.shape[1]}, GCL expects {gcl.dim}")
    own = graph.own
    h = gcl.reduce(graph.x)  # (B_l, D)
    w = graph.edge_attr  # (B_l*B, D)
    for layer in gcl.layers:
        nodes, edges = layer.node_update, layer.edge_update
        o = nodes.node_to_node(graph.gather(h), graph.incoming)
        if o is not None:
            h = nodes.norm(h + o[own])
        o = nodes.edge_to_node(graph.gather(h), w, graph.outgoing)
        if o is not None:
            h = nodes.norm(h + o[own])
        h = nodes.norm(h + nodes.ffn(h))
        a = edges.node_to_edge(graph.gather(h), w, graph.outgoing)
        if a is not None:
            w = edges.norm(a + w)
            w = edges.norm(w + edges.ffn(w))
    lam = torch.sigmoid(gcl.edge_readout(gcl.edge_bn(w)))
    return lam, gcl.node_classifier(gcl.node_bn(h))
