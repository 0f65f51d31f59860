"""One GCA-HNG training iteration, exactly as method.md §6, for any embedding network."""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcahng.distributed.context import DistContext
from gcahng.distributed.runtime import average_gradients, failed_ranks
from gcahng.errors import GcahngError, InputError
from gcahng.generator import HardNegativeGenerator
from gcahng.hyperparameters import StepConfig
from gcahng.losses import METRIC_LOSSES, generator_loss
from gcahng.training.optim import Optimizers

#: Running means start here, so ``gamma ~ 1`` and the synthetic term is off in epoch 0.
INITIAL_RUNNING_MEAN = 1e6


class NonFiniteLossError(GcahngError):
    """A loss became NaN or infinite; no parameter was updated from it."""


@dataclass
class RunningMeans:
    """``Jbar_m`` and ``Jbar_gen``: means of the previous epoch, rolled over by :meth:`end_epoch`."""

    j_m: float = INITIAL_RUNNING_MEAN
    j_gen: float = INITIAL_RUNNING_MEAN
    sums: dict[str, float] = field(default_factory=lambda: {"j_m": 0.0, "j_gen": 0.0})
    counts: dict[str, int] = field(default_factory=lambda: {"j_m": 0, "j_gen": 0})

    def add(self, name: str, value: float) -> None:
        self.sums[name] += max(value, 1e-6)
        self.counts[name] += 1

    def end_epoch(self) -> None:
        for name in ("j_m", "j_gen"):
            if self.counts[name]:
                setattr(self, name, self.sums[name] / self.counts[name])
            self.sums[name], self.counts[name] = 0.0, 0


def _clip(module: nn.Module, value: float) -> None:
    grads = [p for p in module.parameters() if p.grad is not None]
    if grads:
        nn.utils.clip_grad_value_(grads, value)


def _require_finite(name: str, value: Tensor, dist: DistContext | None = None) -> None:
    """Raise :class:`NonFiniteLossError` when ``value`` is not finite; under ``dist`` on every
    rank together, naming the ranks where it is not (all ranks call this at the same points)."""
    finite = bool(torch.isfinite(value).all())
    if dist is None or dist.world_size == 1:
        if finite:
            return
        where = ""
        shown = f" {float(value.detach())}" if value.numel() == 1 else " NaN or infinite"
    else:
        ranks = failed_ranks(not finite, dist.group)
        if not ranks:
            return
        where = f" on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"
        shown = " NaN or infinite"
    raise NonFiniteLossError(
        f"{name} became{shown}{where}; stopping before any update from it "
        "(lower the learning rate or check the inputs)"
    )


class TrainingStep:
    """Performs method.md §6 on a chunk-major batch and keeps the running means.

    Args:
        model: embedding network, images -> (B, D) (not normalised).
        generator: the :class:`HardNegativeGenerator` (GCL + ``W_s``).
        optimizers: see :func:`gcahng.training.build_optimizers`.
        metric_loss: a metric loss (``METRIC_LOSSES``); default N-pair.
        config: :class:`~gcahng.hyperparameters.StepConfig` (loss weights, clipping, generator mode).
        seed: seed of the CPU generator for CACAI's random weighting.
        autocast_dtype: run the forward passes under ``torch.autocast`` with this dtype.
        dist: this rank's place in a distributed run (``images`` are then its slice of the
            global batch); ``model`` is then DDP-wrapped and the other parts' gradients are
            averaged over the ranks here.

    Calling it returns the loss terms as floats; its ``state_dict`` holds the running means and
    the random generator so that a resumed run continues identically.
    """

    def __init__(
        self,
        model: nn.Module,
        generator: HardNegativeGenerator,
        optimizers: Optimizers,
        metric_loss: nn.Module | None = None,
        config: StepConfig = StepConfig(),
        *,
        seed: int = 0,
        autocast_dtype: torch.dtype | None = None,
        dist: DistContext | None = None,
    ) -> None:
        self.model, self.generator, self.optimizers = model, generator, optimizers
        self.metric_loss = metric_loss if metric_loss is not None else METRIC_LOSSES.get("npair")()
        self.config = config
        self.running = RunningMeans()
        self.rng = torch.Generator().manual_seed(seed)
        self.autocast_dtype = autocast_dtype
        self.dist = dist

    @property
    def gamma(self) -> float:
        """Hardness scale ``exp(-alpha / Jbar_m)``."""
        return math.exp(-self.config.loss_weights.alpha / self.running.j_m)

    @property
    def synthetic_weight(self) -> float:
        """``1 - exp(-beta / Jbar_gen)``: weight of ``J_syn`` in ``J_metric``.

        In ``hdml`` mode there is no generator loss, so ``Jbar_m`` takes the place of
        ``Jbar_gen``: the synthetic term is off in the first epoch and ramps up as ``J_m`` falls.
        """
        reference = self.running.j_gen if self.config.mode == "gca" else self.running.j_m
        return 1.0 - math.exp(-self.config.loss_weights.beta / reference)

    def _autocast(self, device: torch.device):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)

    def __call__(self, images: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> dict[str, float]:
        C, m = classes_per_batch, per_class
        if m < 2:
            raise InputError(f"per_class must be >= 2 (each anchor needs a positive), got {m}")
        cfg, opt, gen = self.config, self.optimizers, self.generator
        labels = labels.to(images.device)
        out: dict[str, Tensor] = {}

        # 1-4: embedding network (and GCL through J_gce) on J_metric
        with self._autocast(images.device):
            z = self.model(images)
        z = z.float()
        if z.dim() != 2 or z.shape[0] != labels.shape[0]:
            raise InputError(f"the embedding network returned shape {tuple(z.shape)}, expected ({labels.shape[0]}, D)")
        _require_finite("the embeddings", z, self.dist)
        out["J_m"] = self.metric_loss(z, labels, C, m)
        j_metric = out["J_m"]
        if cfg.mode != "none":
            graph, lam = None, None
            if cfg.mode == "gca":
                graph, lam, node_logits = gen.correlate(z, labels, C, m)
                out["J_gce"] = F.cross_entropy(node_logits, labels)
                j_metric = j_metric + out["J_gce"]
                lam = lam.detach()
            negatives = gen.interpolate(z, lam, self.gamma, labels, C, m, self.rng, graph)
            out["J_syn"] = self.metric_loss.synthetic(z, negatives, labels, C, m)
            j_metric = j_metric + self.synthetic_weight * out["J_syn"]
        out["J_metric"] = j_metric
        _require_finite("J_metric", j_metric, self.dist)
        opt.embedding.zero_grad(set_to_none=True)
        opt.gcl.zero_grad(set_to_none=True)
        j_metric.backward()
        self._average(self.metric_loss)
        _clip(self.model, cfg.grad_clip)
        _clip(self.metric_loss, cfg.grad_clip)
        opt.embedding.step()
        if cfg.mode == "gca":
            self._average(gen.gcl)
            _clip(gen.gcl, cfg.grad_clip)
            opt.gcl.step()

            # 5: the classifier W_s on detached embeddings
            z_fixed = z.detach()
            opt.classifier.zero_grad(set_to_none=True)
            out["J_cls"] = cfg.loss_weights.cls_weight * F.cross_entropy(gen.classifier(z_fixed), labels)
            _require_finite("J_cls", out["J_cls"], self.dist)
            out["J_cls"].backward()
            self._average(gen.classifier)
            opt.classifier.step()

            # 6: the GCL on J_gen (W_s gets gradients here but is not stepped)
            opt.gcl.zero_grad(set_to_none=True)
            graph, lam, _ = gen.correlate(z_fixed, labels, C, m)
            negatives = gen.interpolate(z_fixed, lam, self.gamma, labels, C, m, self.rng, graph)
            out.update(generator_loss(z_fixed, lam, negatives, gen.classifier(negatives.embeddings),
                                      cfg.loss_weights, graph=graph))
            _require_finite("J_gen", out["J_gen"], self.dist)
            out["J_gen"].backward()
            self._average(gen.gcl)
            _clip(gen.gcl, cfg.grad_clip)
            opt.gcl.step()

        # 7: running means for the next epoch
        values = {name: float(value.detach()) for name, value in out.items()}
        self.running.add("j_m", values["J_m"])
        if "J_gen" in values:
            self.running.add("j_gen", values["J_gen"])
        return values

    def _average(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over the ranks: the parts other than the DDP-wrapped
        embedding network (the GCL's two passes use different parameters, which DDP without
        ``find_unused_parameters`` cannot follow)."""
        if self.dist is not None and self.dist.world_size > 1:
            average_gradients(module, self.dist.group)

    def end_epoch(self) -> None:
        """Roll the running means over: this epoch's means become ``Jbar_m``, ``Jbar_gen``."""
        self.running.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"running": asdict(self.running), "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = RunningMeans(**state["running"])
        self.rng.set_state(state["rng"])
