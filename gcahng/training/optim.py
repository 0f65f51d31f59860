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
    """AdamW for the embedding network (``weight_decay``), the GCL (``gnn_lr``, ``weight_decay``)
    and the classifier ``W_s`` (``classifier_lr``, AdamW's default weight decay).

    A metric loss with parameters (proxies) joins the embedding optimiser as its own group at
    the head's learning rate times the loss's ``lr_multiplier`` attribute (default 1).
    """
    groups = embedding_param_groups(model, base_lr, head_lr_ratio)
    loss_params = [p for p in metric_loss.parameters() if p.requires_grad] if metric_loss is not None else []
    if loss_params:
        multiplier = float(getattr(metric_loss, "lr_multiplier", 1.0))
        groups.append({"params": loss_params, "lr": base_lr * head_lr_ratio * multiplier, "name": "metric_loss"})
    return Optimizers(
        embedding=torch.optim.AdamW(groups, weight_decay=weight_decay),
        gcl=torch.optim.AdamW(generator.gcl.parameters(), lr=gnn_lr, weight_decay=weight_decay),
        classifier=torch.optim.AdamW(generator.classifier.parameters(), lr=classifier_lr),
    )
