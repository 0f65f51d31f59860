"""CACAI, Channel-Adaptive Correlation-Aware Interpolation (method.md §4).

Turns the learned per-edge interpolation vectors ``lambda`` into hard synthetic negatives:
for anchor ``a = (t, c)`` and every candidate node ``(s, n)`` the candidate is pulled towards
the anchor channel by channel, never further than the positive's distance, then the ``m``
candidates of each negative class are mixed by random weighting.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch_geometric.data import Data

from gcahng.choices import RANDOM_WEIGHTINGS, RandomWeighting
from gcahng.errors import InputError
from gcahng.graph.batch_graph import check_row_major


@dataclass(frozen=True)
class SyntheticNegatives:
    """``m*C*C`` synthetic negatives in row order ``t*C*C + a*C + n`` (``m*C_a*C`` when made
    for the anchors of ``C_a`` class slots only, see :func:`cacai`).

    Attributes:
        embeddings: (m*C*C, D) negative of anchor ``(t, a)`` for class slot ``n``.
        labels: (m*C*C,) class label of slot ``n``.
        own_class: (m*C*C,) bool, ``n == a``: not a negative (losses mask or replace these rows).
        anchor_index: (m*C*C,) batch index ``t*C + a`` of the row's anchor.
    """

    embeddings: Tensor
    labels: Tensor
    own_class: Tensor
    anchor_index: Tensor


def _mixing_weights(
    m: int, C: int, mode: RandomWeighting, generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """Random-weighting draws ``u``, shaped to broadcast over (m, m-1, C, C, 1).

    ``shared`` (the reference): one ``u`` per ``(t, s)``, drawn in the order t outer, s inner.
    ``per-pair``: an independent ``u`` per ``(t, s, anchor, class)``.
    Drawn on the CPU from ``generator`` so results do not depend on the device.
    """
    if mode == "shared":
        u = torch.rand(m, m - 1, generator=generator).view(m, m - 1, 1, 1, 1)
    elif mode == "per-pair":
        u = torch.rand(m, m - 1, C, C, generator=generator).unsqueeze(-1)
    else:
        raise InputError(f"unknown random weighting {mode!r}; choose one of {', '.join(RANDOM_WEIGHTINGS)}")
    return u.to(device=like.device, dtype=like.dtype)


@dataclass(frozen=True)
class CandidateGeometry:
    """What CACAI computes from the embeddings alone, before ``lambda`` enters: built once per
    training step and shared by its two passes (:meth:`detach` for the pass on detached embeddings).

    Shapes broadcast over (m, C, m, C, D) indexed ``[t, a, s, n]`` (anchor ``(t, a)``, candidate ``(s, n)``):
        anchors: (m, C, 1, 1, D) ``z_a``. candidates: (1, 1, m, C, D) ``z_(s,n)``.
        diff: (m, C, m, C, D) ``z_(s,n) - z_a``. d_pos: (m, C, 1, 1, 1) ``d+ = ||z_a - z_p||``.
        harder: (m, C, m, C, 1) ``d- > d+``. d_neg: (m, C, m, C, 1) ``d- = ||z_(s,n) - z_a||`` where
        ``harder``, 1 elsewhere (``r`` is evaluated only where ``d- > d+``; ``d-`` can be 0).
    """

    anchors: Tensor
    candidates: Tensor
    diff: Tensor
    d_pos: Tensor
    harder: Tensor
    d_neg: Tensor

    @classmethod
    def of(cls, z: Tensor, classes_per_batch: int, per_class: int,
           anchor_slots: slice = slice(None)) -> CandidateGeometry:
        """The geometry of chunk-major embeddings ``z`` (B, D), ``B = C*m``, for the anchors of
        ``anchor_slots`` (``C_a`` class slots in every chunk; all by default): ``C`` becomes ``C_a``
        in the anchor axis of the shapes above."""
        C, m = classes_per_batch, per_class
        Z = z.view(m, C, z.shape[1])
        A = Z[:, anchor_slots]  # (m, C_a, D)
        anchors, candidates = A[:, :, None, None], Z[None, None]
        d_pos = (A - A.roll(-1, dims=0)).norm(dim=-1)[:, :, None, None, None]
        diff = candidates - anchors
        d_neg = diff.norm(dim=-1, keepdim=True)
        harder = d_neg > d_pos
        return cls(anchors, candidates, diff, d_pos, harder, torch.where(harder, d_neg, torch.ones_like(d_neg)))

    def detach(self) -> CandidateGeometry:
        """The same values cut from the autograd graph."""
        return CandidateGeometry(**{f.name: getattr(self, f.name).detach() for f in fields(self)})


def interpolate_candidates(
    z: Tensor, lam: Tensor | None, gamma: float, C: int, m: int, anchor_slots: slice = slice(None),
    geometry: CandidateGeometry | None = None,
) -> Tensor:
    """Per-candidate interpolation ``zhat^(s)_{a,n}`` before mixing.

    Args:
        z: (B, D) chunk-major embeddings, ``B = C*m``.
        lam: (m*C_a*B, D) interpolation vectors in row-major edge order (source = anchor,
            target = candidate) for the anchors of ``anchor_slots`` (``C_a`` class slots in every
            chunk; all of them by default), or ``None`` for ``lambda = 1`` (HDML's interpolation).
        gamma: hardness scale in (0, 1].
        geometry: ``CandidateGeometry.of(z, C, m, anchor_slots)`` when already computed.
    Returns:
        (m, C_a, m, C, D) indexed ``[t, a, s, n]``.
    """
    D = z.shape[1]
    g = geometry if geometry is not None else CandidateGeometry.of(z, C, m, anchor_slots)
    Ca = g.anchors.shape[1]
    if tuple(g.diff.shape) != (m, Ca, m, C, D) or Ca != len(range(C)[anchor_slots]):
        raise InputError(f"the candidate geometry is for shape {tuple(g.diff.shape)}, expected {(m, Ca, m, C, D)}")
    scale = gamma if lam is None else gamma * lam.view(m, Ca, m, C, D)
    r = (g.d_pos + (g.d_neg - g.d_pos) * scale) / g.d_neg
    return torch.where(g.harder, g.anchors + r * g.diff, g.candidates)


def cacai(
    z: Tensor,
    lam: Tensor | None,
    gamma: float,
    labels: Tensor,
    classes_per_batch: int,
    per_class: int,
    *,
    graph: Data | None = None,
    random_weighting: RandomWeighting = "shared",
    generator: torch.Generator | None = None,
    anchor_slots: slice | None = None,
    geometry: CandidateGeometry | None = None,
) -> SyntheticNegatives:
    """Synthesise hard negatives (method.md §4).

    Args:
        z: (B, D) chunk-major embeddings (method.md §1), not normalised.
        lam: (B*B, D) interpolation vectors from GCL (row-major edges), or ``None`` for 1.
        gamma: ``exp(-alpha / Jbar_m)``.
        labels: (B,) chunk-major labels.
        graph: the batch graph ``lam`` was computed on, required with ``lam``: its recorded
            layout and edges must be the complete row-major ones (:func:`~gcahng.graph.check_row_major`).
        random_weighting: ``"shared"`` (reference) or ``"per-pair"``.
        generator: CPU random generator for the mixing weights.
        anchor_slots: only the anchors of these class slots (in every chunk): one rank's part of a
            batch over several ranks; ``lam`` then holds their rows and ``graph`` is the rank's
            :class:`~gcahng.distributed.graph.RowsGraph`. The random draws are those of the whole
            batch, so every rank's generator stays in step. Rows ``t*C_a*C + a*C + n``.
        geometry: ``CandidateGeometry.of(z, C, m, anchor_slots)`` when already computed (the
            values, not the autograd graph, must be those of ``z``).
    """
    C, m = classes_per_batch, per_class
    B, D = z.shape
    if B != C * m:
        raise InputError(f"batch size {B} != classes_per_batch * per_class = {C * m}")
    if lam is not None:
        if graph is None:
            raise InputError("CACAI needs the batch graph lambda was computed on (graph=...) to check its edge order")
        if anchor_slots is None:
            check_row_major(graph, lam, "CACAI", classes_per_batch=C, per_class=m)
        else:
            from gcahng.distributed.graph import check_rows

            check_rows(graph, lam, "CACAI")
        if lam.shape[1] != D:
            raise InputError(f"lambda must have shape ({B * B}, {D}), got {tuple(lam.shape)}")
    slots = torch.arange(C, device=z.device)
    anchors = slots if anchor_slots is None else slots[anchor_slots]  # (C_a,) global slots
    zhat = interpolate_candidates(z, lam, gamma, C, m, slice(None) if anchor_slots is None else anchor_slots,
                                  geometry)
    u = _mixing_weights(m, C, random_weighting, generator, z)  # [t, s, a, n] or shared
    if anchor_slots is not None and u.shape[2] > 1:
        u = u[:, :, anchor_slots]
    # one view per candidate image s (unbind: a single gradient op instead of one zero-filled per select)
    per_image = zhat.unbind(2)  # m x (m, C_a, C, D) [t, a, n]
    acc = per_image[0]
    for s in range(1, m):
        acc = per_image[s] + u[:, s - 1] * (acc - per_image[s])

    Ca = anchors.numel()
    own = (anchors[:, None] == slots[None, :]).expand(m, Ca, C)  # [t, a, n]: n == a
    anchor = (torch.arange(m, device=z.device)[:, None] * C + anchors[None, :])  # (m, C_a)
    return SyntheticNegatives(
        embeddings=acc.reshape(m * Ca * C, D),
        labels=labels[:C].repeat(m * Ca),
        own_class=own.reshape(-1),
        anchor_index=anchor[:, :, None].expand(m, Ca, C).reshape(-1),
    )
