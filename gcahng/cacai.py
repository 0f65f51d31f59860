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
    """``m*C*C`` synthetic negatives in row order ``t*C*C + a*C + n``.

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
    def of(cls, z: Tensor, classes_per_batch: int, per_class: int) -> CandidateGeometry:
        """The geometry of chunk-major embeddings ``z`` (B, D), ``B = C*m``."""
        C, m = classes_per_batch, per_class
        Z = z.view(m, C, z.shape[1])
        anchors, candidates = Z[:, :, None, None], Z[None, None]
        d_pos = (Z - Z.roll(-1, dims=0)).norm(dim=-1)[:, :, None, None, None]
        diff = candidates - anchors
        d_neg = diff.norm(dim=-1, keepdim=True)
        harder = d_neg > d_pos
        return cls(anchors, candidates, diff, d_pos, harder, torch.where(harder, d_neg, torch.ones_like(d_neg)))

    def detach(self) -> CandidateGeometry:
        """The same values cut from the autograd graph."""
        return CandidateGeometry(**{f.name: getattr(self, f.name).detach() for f in fields(self)})


def interpolate_candidates(
    z: Tensor, lam: Tensor | None, gamma: float, C: int, m: int, geometry: CandidateGeometry | None = None
) -> Tensor:
    """Per-candidate interpolation ``zhat^(s)_{a,n}`` before mixing.

    Args:
        z: (B, D) chunk-major embeddings, ``B = C*m``.
        lam: (B*B, D) interpolation vectors in row-major edge order (source = anchor,
            target = candidate), or ``None`` for ``lambda = 1`` (HDML's interpolation).
        gamma: hardness scale in (0, 1].
        geometry: ``CandidateGeometry.of(z, C, m)`` when already computed.
    Returns:
        (m, C, m, C, D) indexed ``[t, a, s, n]``.
    """
    B, D = z.shape
    g = geometry if geometry is not None else CandidateGeometry.of(z, C, m)
    if tuple(g.diff.shape) != (m, C, m, C, D):
        raise InputError(f"the candidate geometry is for shape {tuple(g.diff.shape)}, expected {(m, C, m, C, D)}")
    scale = gamma if lam is None else gamma * lam.view(m, C, m, C, D)
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
        geometry: ``CandidateGeometry.of(z, C, m)`` when already computed (the values, not the
            autograd graph, must be those of ``z``).
    """
    C, m = classes_per_batch, per_class
    B, D = z.shape
    if B != C * m:
        raise InputError(f"batch size {B} != classes_per_batch * per_class = {C * m}")
    if lam is not None:
        if graph is None:
            raise InputError("CACAI needs the batch graph lambda was computed on (graph=...) to check its edge order")
        check_row_major(graph, lam, "CACAI", classes_per_batch=C, per_class=m)
        if lam.shape[1] != D:
            raise InputError(f"lambda must have shape ({B * B}, {D}), got {tuple(lam.shape)}")
    zhat = interpolate_candidates(z, lam, gamma, C, m, geometry)  # (m, C, m, C, D) [t, a, s, n]
    u = _mixing_weights(m, C, random_weighting, generator, z)
    acc = zhat[:, :, 0]  # (m, C, C, D) [t, a, n]
    for s in range(1, m):
        acc = zhat[:, :, s] + u[:, s - 1] * (acc - zhat[:, :, s])

    slots = torch.arange(C, device=z.device)
    own = (slots[:, None] == slots[None, :]).expand(m, C, C)  # [t, a, n]: n == a
    anchor = (torch.arange(m, device=z.device)[:, None] * C + slots[None, :])  # (m, C)
    return SyntheticNegatives(
        embeddings=acc.reshape(m * C * C, D),
        labels=labels[:C].repeat(m * C),
        own_class=own.reshape(-1),
        anchor_index=anchor[:, :, None].expand(m, C, C).reshape(-1),
    )
