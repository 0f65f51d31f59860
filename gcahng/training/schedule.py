"""Per-epoch schedules of method.md §6: StepLR (embedding network), cosine annealing (GCL),
a constant classifier learning rate, and the warm-up freeze of the backbone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, StepLR

from gcahng.training.optim import Optimizers


@dataclass
class Schedulers:
    """``embedding``: StepLR(``decay_epochs``, ``decay_gamma``); ``gcl``: cosine annealing over
    all epochs, ``None`` when no GCL trains (generator modes ``hdml`` and ``none``). The
    classifier's learning rate is constant, so it has none."""

    embedding: StepLR
    gcl: CosineAnnealingLR | None

    def step(self) -> None:
        """Advance the schedules by one epoch."""
        self.embedding.step()
        if self.gcl is not None:
            self.gcl.step()

    def state_dict(self) -> dict[str, Any]:
        return {"embedding": self.embedding.state_dict(), "gcl": None if self.gcl is None else self.gcl.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.embedding.load_state_dict(state["embedding"])
        if self.gcl is not None:
            self.gcl.load_state_dict(state["gcl"])


def build_schedulers(
    optimizers: Optimizers, *, epochs: int, decay_epochs: int, decay_gamma: float, train_gcl: bool = True
) -> Schedulers:
    """The schedules of one run of ``epochs`` epochs (stepped once per epoch)."""
    return Schedulers(
        embedding=StepLR(optimizers.embedding, step_size=decay_epochs, gamma=decay_gamma),
        gcl=CosineAnnealingLR(optimizers.gcl, T_max=epochs) if train_gcl else None,
    )


def apply_warmup(model: nn.Module, epoch: int, warmup_epochs: int) -> bool:
    """Freeze the backbone's parameters during the first ``warmup_epochs`` epochs (0-based
    ``epoch``), unfreeze them after. Returns whether the backbone is frozen in ``epoch``.
    Models without ``set_backbone_trainable`` are never frozen."""
    if not hasattr(model, "set_backbone_trainable"):
        return False
    frozen = epoch < warmup_epochs
    model.set_backbone_trainable(not frozen)
    return frozen
