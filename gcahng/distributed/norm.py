"""Batch norm with statistics over the global batch of all ranks, on any backend (gloo too).

``nn.SyncBatchNorm`` refuses CPU tensors; :class:`GlobalBatchNorm` is a ``BatchNorm1d`` /
``BatchNorm2d`` subclass (same parameters, buffers and state_dict keys, so checkpoints load
either way) whose training-mode forward normalises with the mean and biased variance of all
ranks' rows, computed in two passes (sum, then squared deviations) by differentiable
all-reduces, and updates the running statistics as one process would on the whole batch
(unbiased variance over the global count). In eval mode, without a context or in a world of
one it is the module it replaces.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from gcahng.distributed.collectives import all_reduce_sum
from gcahng.distributed.context import DistContext


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Mixin of the global-statistics forward; use :func:`use_global_statistics` to install it."""

    dist: DistContext | None = None

    def forward(self, x: Tensor) -> Tensor:
        ctx = self.dist
        if ctx is None or ctx.world_size == 1 or not self.training:
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]  # all but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = all_reduce_sum(x.new_tensor(float(x.numel() // x.shape[1])), ctx)
        mean = all_reduce_sum(x.sum(dim=dims), ctx) / count
        centred = x - mean.view(shape)
        var = all_reduce_sum(centred.pow(2).sum(dim=dims), ctx) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count)
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(var.detach() * (n / max(n - 1, 1)), alpha=momentum)
        out = centred / (var + self.eps).sqrt().view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


class GlobalBatchNorm1d(GlobalBatchNorm, nn.BatchNorm1d):
    """``BatchNorm1d`` over the global batch."""


class GlobalBatchNorm2d(GlobalBatchNorm, nn.BatchNorm2d):
    """``BatchNorm2d`` over the global batch."""


_GLOBAL = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d}


def use_global_statistics(module: nn.Module, ctx: DistContext | None) -> int:
    """Make every ``BatchNorm1d``/``BatchNorm2d`` in ``module`` use the statistics of all
    ranks of ``ctx`` (``None``: its own batch again). In place: each layer keeps its
    parameters and buffers (the same tensors, so optimisers and DDP see no change) and only
    its class changes. Call it before wrapping in DDP. Returns the number of layers."""
    count = 0
    for layer in module.modules():
        cls = type(layer)
        base = next((b for b, g in _GLOBAL.items() if cls in (b, g)), None)
        if base is None:
            continue
        layer.__class__ = _GLOBAL[base]
        layer.dist = ctx
        count += 1
    return count
