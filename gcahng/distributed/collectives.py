"""Collectives that keep the gradient, and the chunk-major reordering of gathered batches.

Gradient convention of the distributed step: the global loss is the sum over ranks of each
rank's *share* (its loss rows, normalised by global counts; a loss computed on the gathered
batch contributes ``1/W`` of itself), and every rank runs backward on ``W * share``. The
backward of :func:`all_gather` and :func:`all_reduce_sum` sums the gradients of all ranks
(the adjoint of the collective), so each rank's parameter gradient is ``W`` times its part of
the global gradient and DDP's averaging (sum over ranks / W) yields the global loss's gradient.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from gcahng.distributed.context import DistContext


class _AllGather(torch.autograd.Function):
    """``cat([x_0, ..., x_{W-1}])`` of the ranks' equally shaped ``x``; backward: sum of all
    ranks' gradients (all-reduce; gloo has no reduce-scatter), this rank's rows."""

    @staticmethod
    def forward(ctx, x: Tensor, rank: int, world_size: int, group) -> Tensor:
        ctx.rank, ctx.rows, ctx.group = rank, x.shape[0], group
        parts = [torch.empty_like(x) for _ in range(world_size)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows], None, None, None


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward: the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def all_gather(x: Tensor, ctx: DistContext) -> Tensor:
    """(W*N, ...) the ranks' (N, ...) tensors in rank order, differentiable when ``x`` is.

    Tensors without gradient (labels) are gathered the same way.
    """
    if not x.requires_grad:
        parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
        dist.all_gather(parts, x.contiguous(), group=ctx.group)
        return torch.cat(parts)
    return _AllGather.apply(x, ctx.rank, ctx.world_size, ctx.group)


def all_reduce_sum(x: Tensor, ctx: DistContext) -> Tensor:
    """The sum over ranks of ``x`` (any shape), differentiable when ``x`` is."""
    if not x.requires_grad:
        out = x.detach().clone()
        dist.all_reduce(out, group=ctx.group)
        return out
    return _AllReduceSum.apply(x, ctx.group)


def gather_chunk_major(x: Tensor, ctx: DistContext, per_class: int) -> Tensor:
    """The global chunk-major batch from each rank's chunk-major slice.

    ``x``: (m*C_local, ...) this rank's nodes ``t*C_local + c``; rank ``r`` holds the global
    class slots ``r*C_local + c``. Returns (m*C, ...) with ``C = W*C_local``, node ``t*C + r*C_local + c``.
    """
    m = per_class
    gathered = all_gather(x, ctx)  # (W*m*C_local, ...), rank-major
    rest = gathered.shape[1:]
    local = x.shape[0] // m
    return gathered.view(ctx.world_size, m, local, *rest).transpose(0, 1).reshape(ctx.world_size * x.shape[0], *rest)


def own_nodes(ctx: DistContext, classes_per_batch: int, per_class: int, device: torch.device | None = None) -> Tensor:
    """(m*C_local,) global indices ``t*C + r*C_local + c`` of this rank's nodes, in local order.

    ``classes_per_batch``: the GLOBAL ``C`` (divisible by the world size).
    """
    C, m = classes_per_batch, per_class
    local = C // ctx.world_size
    t = torch.arange(m, device=device)[:, None]
    c = torch.arange(local, device=device)[None, :]
    return (t * C + ctx.rank * local + c).reshape(-1)


def all_reduce_values(values: dict[str, float], ctx: DistContext, device: torch.device) -> dict[str, float]:
    """Each value summed over the ranks (one float64 all-reduce on ``device`` for the whole dict)."""
    names = sorted(values)
    total = torch.tensor([values[n] for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(total, group=ctx.group)
    return dict(zip(names, total.tolist(), strict=True))
