"""The batch similarity graph of method.md §2 as a PyTorch Geometric ``Data`` object."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

from gcahng.errors import InputError

#: Added to the centred norm so that a constant embedding gives zero correlations, not NaN.
NORM_EPS = 1e-12

#: The only layout :func:`build_batch_graph` builds: every ordered pair ``(i, j)`` of the ``B``
#: nodes, self-loops included, as edge ``e = i*B + j``.
COMPLETE_ROW_MAJOR = "complete-row-major-with-self-loops"


@dataclass(frozen=True)
class GraphLayout:
    """How the edges of a batch graph are laid out, stored as ``data.layout`` by
    :func:`build_batch_graph` for the consumers that address edges by position (CACAI and the
    diversity loss ``view`` the (E, D) ``lambda`` as (m, C, m, C, D))."""

    kind: str
    num_nodes: int
    classes_per_batch: int
    per_class: int


def check_row_major(
    graph: Data, lam: Tensor, consumer: str, *, classes_per_batch: int | None = None, per_class: int | None = None
) -> GraphLayout:
    """The graph's :class:`GraphLayout`, after checking that ``graph`` is the complete row-major
    graph built by :func:`build_batch_graph` (for a ``C x m`` batch, when given) and that ``lam``
    (E, D) holds one row per edge. Raises :class:`InputError` otherwise; ``consumer`` names the
    caller in the message.

    Besides the recorded layout it compares ``graph.edge_index`` with the layout (2*B*B
    integers), so edges reordered or dropped after building are caught too.
    """
    layout = getattr(graph, "layout", None)
    if not isinstance(layout, GraphLayout) or layout.kind != COMPLETE_ROW_MAJOR:
        found = layout.kind if isinstance(layout, GraphLayout) else "none recorded"
        raise InputError(
            f"{consumer} needs the {COMPLETE_ROW_MAJOR} batch graph of build_batch_graph; "
            f"the graph's layout is {found}"
        )
    built = (layout.classes_per_batch, layout.per_class)
    wanted = (classes_per_batch or built[0], per_class or built[1])  # None: take the recorded value
    if built != wanted:
        raise InputError(
            f"{consumer} got a graph built for C={built[0]}, m={built[1]}, "
            f"but the batch has C={wanted[0]}, m={wanted[1]}"
        )
    B = layout.num_nodes
    edge_index = graph.edge_index
    if not is_complete_edge_index(edge_index, B):
        raise InputError(
            f"{consumer} needs the edges in the {COMPLETE_ROW_MAJOR} order of build_batch_graph "
            f"({B * B} edges, e = i*{B} + j); this graph's {edge_index.shape[1]} edges were reordered or dropped"
        )
    if lam.dim() != 2 or lam.shape[0] != B * B:
        raise InputError(
            f"{consumer} needs lambda with one row per edge, ({B * B}, D) in the graph's edge order; "
            f"got {tuple(lam.shape)} (a layer that drops or adds edges cannot feed it)"
        )
    return layout


def complete_graph_size(graph: Data) -> int | None:
    """``B`` when ``graph`` is the complete row-major graph of :func:`build_batch_graph` (its recorded
    layout and its edges), else ``None``: the test for the layers' dense and per-pair computations."""
    layout = getattr(graph, "layout", None)
    if not isinstance(layout, GraphLayout) or layout.kind != COMPLETE_ROW_MAJOR:
        return None
    return layout.num_nodes if is_complete_edge_index(graph.edge_index, layout.num_nodes) else None


def check_chunk_major(labels: Tensor, classes_per_batch: int, per_class: int) -> None:
    """Raise :class:`InputError` unless ``labels`` follow the chunk-major layout of method.md §1.

    Chunk-major: node ``t*C + c`` is image ``t`` of class slot ``c``, so every chunk of ``C``
    consecutive labels repeats chunk 0, and chunk 0 holds ``C`` distinct classes.
    """
    C, m = classes_per_batch, per_class
    if labels.dim() != 1:
        raise InputError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    if C < 1 or m < 1:
        raise InputError(f"classes_per_batch and per_class must be >= 1, got C={C}, m={m}")
    if labels.numel() != C * m:
        raise InputError(
            f"batch size {labels.numel()} != classes_per_batch * per_class = {C} * {m} = {C * m}"
        )
    chunks = labels.view(m, C)
    if torch.unique(chunks[0]).numel() != C:
        raise InputError(
            f"chunk 0 repeats a class (labels {chunks[0].tolist()}): each chunk must hold "
            f"{C} distinct classes"
        )
    bad = (chunks != chunks[0]).any(dim=1).nonzero().flatten()
    if bad.numel():
        t = int(bad[0])
        raise InputError(
            f"labels are not chunk-major: chunk {t} lists {chunks[t].tolist()} but chunk 0 lists "
            f"{chunks[0].tolist()} (a class-major batch becomes chunk-major by taking elements t::m)"
        )


def channel_correlations(z: Tensor) -> Tensor:
    """Per-edge channel-wise correlations ``w_ij = u_i * u_j / (|u_i| |u_j|)`` (method.md §2).

    ``z``: (B, D). Returns (B*B, D) in row-major edge order ``e = i*B + j``; summing a row over
    channels gives the Pearson correlation of ``z_i`` and ``z_j``.
    """
    u = z - z.mean(dim=1, keepdim=True)  # (B, D) centred over channels
    u = u / u.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)
    B, D = u.shape
    return (u.unsqueeze(1) * u.unsqueeze(0)).reshape(B * B, D)


@functools.lru_cache(maxsize=16)
def _shared_complete_edge_index(num_nodes: int, device: torch.device) -> Tensor:
    # built once per size and device; only compared with, never handed out
    idx = torch.arange(num_nodes, device=device)
    return torch.stack([idx.repeat_interleave(num_nodes), idx.repeat(num_nodes)])


def complete_edge_index(num_nodes: int, device: torch.device | None = None) -> Tensor:
    """(2, B*B) edge index of the complete graph with self-loops, row-major: e = i*B + j (a new tensor)."""
    return _shared_complete_edge_index(num_nodes, torch.device(device or "cpu")).clone()


def is_complete_edge_index(edge_index: Tensor, num_nodes: int) -> bool:
    """Whether ``edge_index`` is :func:`complete_edge_index` of ``num_nodes`` nodes (shape and values)."""
    B = num_nodes
    return tuple(edge_index.shape) == (2, B * B) and torch.equal(
        edge_index, _shared_complete_edge_index(B, edge_index.device))


def build_batch_graph(
    z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int
) -> Data:
    """Build the batch graph of a chunk-major batch (method.md §2).

    Args:
        z: (B, D) embeddings, ``B = classes_per_batch * per_class``, not normalised.
        labels: (B,) integer class labels in chunk-major order.
    Returns:
        ``Data`` with ``x`` (B, D) = ``z``, ``edge_index`` (2, B*B) row-major with self-loops,
        ``edge_attr`` (B*B, D) channel-wise correlations, ``y`` (B,), ``same_class`` (B*B,) bool
        (true on self-loops), the ints ``classes_per_batch`` / ``per_class``, and ``layout``,
        the :class:`GraphLayout` (``COMPLETE_ROW_MAJOR``) that :func:`check_row_major` checks.
    Raises:
        InputError (a ``ValueError``): ``z`` not 2-D or not finite, ``B != C*m``, labels not
        chunk-major, or a class repeated within a chunk.
    """
    if not isinstance(z, Tensor) or z.dim() != 2:
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise InputError(f"embeddings must be a 2-D tensor (B, D), got {shape}")
    if not torch.is_floating_point(z):
        raise InputError(f"embeddings must be floating point, got {z.dtype}")
    labels = torch.as_tensor(labels, device=z.device)
    if labels.shape != (z.shape[0],):
        raise InputError(
            f"labels must have shape ({z.shape[0]},) to match the embeddings, got {tuple(labels.shape)}"
        )
    if not bool(torch.isfinite(z).all()):
        raise InputError("embeddings contain NaN or infinite values")
    check_chunk_major(labels, classes_per_batch, per_class)

    B = z.shape[0]
    edge_index = complete_edge_index(B, z.device)
    same_class = labels[edge_index[0]] == labels[edge_index[1]]
    return Data(
        x=z,
        edge_index=edge_index,
        edge_attr=channel_correlations(z),
        y=labels,
        same_class=same_class,
        classes_per_batch=int(classes_per_batch),
        per_class=int(per_class),
        layout=GraphLayout(COMPLETE_ROW_MAJOR, B, int(classes_per_batch), int(per_class)),
    )
