"""The batch similarity graph of method.md §2 as a PyTorch Geometric ``Data`` object."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from gcahng.errors import InputError

#: Added to the centred norm so that a constant embedding gives zero correlations, not NaN.
NORM_EPS = 1e-12


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


def complete_edge_index(num_nodes: int, device: torch.device | None = None) -> Tensor:
    """(2, B*B) edge index of the complete graph with self-loops, row-major: e = i*B + j."""
    idx = torch.arange(num_nodes, device=device)
    return torch.stack([idx.repeat_interleave(num_nodes), idx.repeat(num_nodes)])


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
        (true on self-loops), and the ints ``classes_per_batch`` / ``per_class``.
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
    )
