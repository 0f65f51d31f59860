"""The three AdamW optimisers of method.md §6."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from gcahng.generator import HardNegativeGenerator


@dataclass
class Optimizers:
    """``embedding`` updates the embedding network, ``gcl`` the GCL, ``classifier`` ``W_s``."""

    embedding: torch.optim.Optimizer
    gcl: torch.optim.Optimizer
    classifier: torch.optim.Optimizer

    def items(self) -> Iterator[tuple[str, torch.optim.Optimizer]]:
        yield from (("embedding", self.embedding), ("gcl", self.gcl), ("classifier", self.classifier))


def embedding_param_groups(model: nn.Module, base_lr: float, head_lr_ratio: float) -> list[dict]:
    """Backbone at ``base_lr`` and head at ``base_lr * head_lr_ratio`` when the model exposes
    ``backbone_parameters()`` / ``head_parameters()``; otherwise one group at ``base_lr``."""
    if hasattr(model, "backbone_parameters") and hasattr(model, "head_parameters"):
        return [
            {"params": list(model.backbone_parameters()), "lr": base_lr, "name": "backbone"},
            {"params": list(model.head_parameters()), "lr": base_lr * head_lr_ratio, "name": "head"},
        ]
    return [{"params": list(model.parameters()), "lr": base_lr, "name": "embedding"}]


#: Devices whose AdamW has a fused kernel: one call updates every tensor of a step, where the
#: for-loop implementation issues about ten small operations per parameter tensor.
FUSED_DEVICES = ("cpu", "cuda")


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` on ``params`` (tensors or parameter groups), fused when every
    parameter is a floating-point tensor on one of :data:`FUSED_DEVICES` (same update, to rounding)."""
    params = list(params)
    tensors = [p for group in params for p in group["params"]] if params and isinstance(params[0], dict) else params
    fused = bool(tensors) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in tensors)
    return torch.optim.AdamW(params, fused=fused or None, **kwargs)


def build_optimizers(
    model: nn.Module,
    generator: HardNegativeGenerator,
    *,
    base_lr: float,
    gnn_lr: float,
    weight_decay: float = 1e-4,
    head_lr_ratio: float = 1.0,
    classifier_lr: float = 1e-3,
    metric_loss: nn.Module | None = None,
) -> Optimizers:
    """AdamW (:func:`adamw`) for the embedding network (``weight_decay``), the GCL (``gnn_lr``,
    ``weight_decay``) and the classifier ``W_s`` (``classifier_lr``, AdamW's default weight decay).

    A metric loss with parameters (proxies) joins the embedding optimiser as its own group at
    the head's learning rate times the loss's ``lr_multiplier`` attribute (default 1).
    """
    groups = embedding_param_groups(model, base_lr, head_lr_ratio)
    loss_params = [p for p in metric_loss.parameters() if p.requires_grad] if metric_loss is not None else []
    if loss_params:
        multiplier = float(getattr(metric_loss, "lr_multiplier", 1.0))
        groups.append({"params": loss_params, "lr": base_lr * head_lr_ratio * multiplier, "name": "metric_loss"})
    return Optimizers(
        embedding=adamw(groups, weight_decay=weight_decay),
        gcl=adamw(generator.gcl.parameters(), lr=gnn_lr, weight_decay=weight_decay),
        classifier=adamw(generator.classifier.parameters(), lr=classifier_lr),
    )
