"""Gather-fused edge operations that keep only node-sized tensors for the backward pass.

A message ``f(x_i, y_j)`` written with PyG's ``_i``/``_j`` arguments gathers an (E, D) copy of
each node tensor, and autograd keeps those copies until the backward pass: for the complete
batch graph that is ``B`` times the node memory per copy. These two functions compute the
same values but save the (B, D) node tensors and the indices, and gather again in backward.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _take(x: Tensor, index: Tensor | None) -> Tensor:
    return x if index is None else x.index_select(0, index)


def _put(grad_rows: Tensor, like: Tensor, index: Tensor | None) -> Tensor:
    # summed in the gradient's dtype (float32 when autocast gave ``like`` a lower precision)
    return grad_rows if index is None else grad_rows.new_zeros(like.shape).index_add_(0, index, grad_rows)


class _GatherDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, x_index: Tensor | None, y_index: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, y, x_index, y_index)
        return (_take(x, x_index) * _take(y, y_index)).sum(-1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, y, x_index, y_index = ctx.saved_tensors
        grad = grad.unsqueeze(-1)
        grad_x = _put(grad * _take(y, y_index), x, x_index) if ctx.needs_input_grad[0] else None
        grad_y = _put(grad * _take(x, x_index), y, y_index) if ctx.needs_input_grad[1] else None
        return grad_x, grad_y, None, None


class _GatherScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, x: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(weight, x, index)
        return weight.unsqueeze(-1) * x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weight, x, index = ctx.saved_tensors
        grad_weight = (grad * x.index_select(0, index)).sum(-1) if ctx.needs_input_grad[0] else None
        grad_x = _put(grad * weight.unsqueeze(-1), x, index) if ctx.needs_input_grad[1] else None
        return grad_weight, grad_x, None


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when autocast gave it a lower precision (float32 and float64 stay as they are)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def gather_dot(x: Tensor, y: Tensor, x_index: Tensor | None, y_index: Tensor | None) -> Tensor:
    """``(x[x_index] * y[y_index]).sum(-1)``; an index of ``None`` takes the tensor as is.

    ``x``: (N_x, ..., F), ``y``: (N_y, ..., F), indices (E,). Returns (E, ...).
    """
    return _GatherDot.apply(x, y, x_index, y_index)


def gather_scale(weight: Tensor, x: Tensor, index: Tensor) -> Tensor:
    """``weight[..., None] * x[index]``: ``weight`` (E, ...), ``x`` (N, ..., F) -> (E, ..., F)."""
    return _GatherScale.apply(weight, x, index)
