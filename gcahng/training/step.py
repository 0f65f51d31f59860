"""One GCA-HNG training iteration, exactly as method.md §6, for any embedding network."""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from gcahng.cacai import CandidateGeometry
from gcahng.distributed.context import DistContext
from gcahng.errors import GcahngError, InputError
from gcahng.generator import HardNegativeGenerator
from gcahng.graph import build_batch_graph
from gcahng.hyperparameters import LossWeights, StepConfig
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
    """``clip_grad_value_`` in one pass over each gradient (its foreach form makes two)."""
    with torch.no_grad():
        for p in module.parameters():
            if p.grad is not None:
                p.grad.clamp_(-value, value)


def _detached(graph: Data | None) -> Data | None:
    """A shallow copy of ``graph`` whose tensors (node features, correlations) are cut from autograd."""
    return None if graph is None else copy.copy(graph).detach()


def _require_finite(name: str, value: Tensor) -> None:
    if not bool(torch.isfinite(value).all()):
        shown = f" {float(value.detach())}" if value.numel() == 1 else " NaN or infinite"
        raise NonFiniteLossError(
            f"{name} became{shown}; stopping before any update from it "
            "(lower the learning rate or check the inputs)"
        )


class _OneProcess:
    """The step's batch, graph and loss terms in a single process (the whole batch is here).
    The distributed counterpart with the same methods is :class:`gcahng.distributed.scope.RankScope`."""

    world_size = 1

    def graph_classes(self, classes_per_batch: int) -> int:
        return classes_per_batch

    def batch(self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> tuple[Tensor, Tensor, int]:
        return z, labels, classes_per_batch

    def metric(self, loss: nn.Module, z: Tensor, labels: Tensor, C: int, m: int) -> Tensor:
        return loss(z, labels, C, m)

    def prepare(self, z: Tensor, labels: Tensor, C: int, m: int) -> tuple[Data, CandidateGeometry]:
        """What does not depend on the GCL weights, built once per step: the batch graph and
        CACAI's candidate geometry (the distributed scope builds its own and returns ``None``s)."""
        return build_batch_graph(z, labels, C, m), CandidateGeometry.of(z, C, m)

    def correlate(self, gen: HardNegativeGenerator, z: Tensor, labels: Tensor, C: int, m: int, z_all: Tensor,
                  graph: Data | None = None, lambda_grad: bool = True):
        return gen.correlate(z, labels, C, m, graph=graph, lambda_grad=lambda_grad)

    def interpolate(self, gen: HardNegativeGenerator, z, lam, gamma, labels, C, m, rng, graph, geometry=None):
        return gen.interpolate(z, lam, gamma, labels, C, m, rng, graph, geometry=geometry)

    def synthetic(self, loss: nn.Module, z: Tensor, negatives, labels: Tensor, C: int, m: int) -> Tensor:
        return loss.synthetic(z, negatives, labels, C, m)

    def rows_mean(self, mean: Tensor) -> Tensor:
        return mean

    def generator_loss(self, z, lam, negatives, logits, weights: LossWeights, graph) -> dict[str, Tensor]:
        return generator_loss(z, lam, negatives, logits, weights, graph=graph)

    def backward(self, loss: Tensor) -> None:
        loss.backward()

    def sync(self, module: nn.Module) -> None:
        pass

    def require_finite(self, name: str, value: Tensor, error: type[GcahngError]) -> None:
        _require_finite(name, value)

    def values(self, out: dict[str, Tensor], device: torch.device) -> dict[str, float]:
        return {name: float(value.detach()) for name, value in out.items()}


class TrainingStep:
    """Performs method.md §6 on a chunk-major batch and keeps the running means.

    Args:
        model: embedding network, images -> (B, D) (not normalised).
        generator: the :class:`HardNegativeGenerator` (GCL + ``W_s``).
        optimizers: see :func:`gcahng.training.build_optimizers`.
        metric_loss: a metric loss (``METRIC_LOSSES``); default N-pair.
        config: :class:`~gcahng.hyperparameters.StepConfig` (loss weights, clipping, generator mode).
        seed: seed of the CPU generator for CACAI's random weighting.
        autocast_dtype: run the embedding network and the GCL under ``torch.autocast`` with this
            dtype (bfloat16 on the CPU or CUDA); CACAI, the classifier and the losses stay float32.
        dist: this rank's :class:`~gcahng.distributed.DistContext` in a distributed run (``None``:
            one process). Then each call takes the rank's LOCAL batch (its ``C / W`` class slots
            x ``m``, chunk-major; ``classes_per_batch`` is ``C / W``), every rank must use the same
            ``seed``, and with ``graph_scope: global`` the step computes the method on the global
            batch (:mod:`gcahng.distributed.scope`) and makes the batch norms of ``model`` and of
            the GCL use global statistics. Every rank gets the same global loss values.

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
        self._scope: _OneProcess = _OneProcess()
        if dist is not None and dist.world_size > 1:
            from gcahng.distributed.norm import use_global_statistics
            from gcahng.distributed.scope import RankScope

            self._scope = RankScope(dist)
            if dist.is_global:
                for part in (model, generator.gcl):
                    use_global_statistics(part, dist)

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
        cfg, opt, gen, scope = self.config, self.optimizers, self.generator, self._scope
        if m < 2:
            raise InputError(f"per_class must be >= 2 (each anchor needs a positive), got {m}")
        if (classes := scope.graph_classes(C)) < 2:
            raise InputError(f"the batch must hold >= 2 classes (each anchor needs negatives of another class), "
                             f"got {classes}")
        labels = labels.to(images.device)
        out: dict[str, Tensor] = {}  # each term, or this rank's share of it (see gcahng.distributed.scope)

        # 1-4: embedding network (and GCL through J_gce) on J_metric
        with self._autocast(images.device):
            z = self.model(images)
        z = z.to(next(gen.parameters()).dtype)  # float32 after a bfloat16 autocast; float64 runs stay float64
        if z.dim() != 2 or z.shape[0] != labels.shape[0]:
            raise InputError(f"the embedding network returned shape {tuple(z.shape)}, expected ({labels.shape[0]}, D)")
        scope.require_finite("the embeddings", z, NonFiniteLossError)
        z_all, labels_all, C_all = scope.batch(z, labels, C, m)  # the batch the graph and losses see
        out["J_m"] = scope.metric(self.metric_loss, z_all, labels_all, C_all, m)
        j_metric = out["J_m"]
        if cfg.mode != "none":
            # what does not depend on the GCL weights is built once and reused, detached, in step 6
            prepared_graph, geometry = scope.prepare(z_all, labels_all, C_all, m)
            graph, lam = None, None
            if cfg.mode == "gca":
                with self._autocast(z.device):
                    # lambda enters J_metric detached, so its last edge update needs no autograd
                    graph, lam, node_logits = scope.correlate(gen, z, labels, C, m, z_all, prepared_graph,
                                                              lambda_grad=False)
                out["J_gce"] = scope.rows_mean(F.cross_entropy(node_logits, labels))
                j_metric = j_metric + out["J_gce"]
            negatives = scope.interpolate(gen, z_all, lam, self.gamma, labels_all, C_all, m, self.rng, graph, geometry)
            out["J_syn"] = scope.synthetic(self.metric_loss, z_all, negatives, labels_all, C_all, m)
            j_metric = j_metric + self.synthetic_weight * out["J_syn"]
        out["J_metric"] = j_metric
        scope.require_finite("J_metric", j_metric, NonFiniteLossError)
        opt.embedding.zero_grad(set_to_none=True)
        opt.gcl.zero_grad(set_to_none=True)
        scope.backward(j_metric)
        scope.sync(self.model)
        scope.sync(self.metric_loss)
        _clip(self.model, cfg.grad_clip)
        _clip(self.metric_loss, cfg.grad_clip)
        opt.embedding.step()
        if cfg.mode == "gca":
            scope.sync(gen.gcl)
            _clip(gen.gcl, cfg.grad_clip)
            opt.gcl.step()

            # 5: the classifier W_s on detached embeddings
            z_fixed, z_all_fixed = z.detach(), z_all.detach()
            opt.classifier.zero_grad(set_to_none=True)
            out["J_cls"] = cfg.loss_weights.cls_weight * scope.rows_mean(
                F.cross_entropy(gen.classifier(z_fixed), labels))
            scope.require_finite("J_cls", out["J_cls"], NonFiniteLossError)
            scope.backward(out["J_cls"])
            scope.sync(gen.classifier)
            opt.classifier.step()

            # 6: the GCL on J_gen (W_s gets gradients here but is not stepped)
            opt.gcl.zero_grad(set_to_none=True)
            with self._autocast(z.device):
                graph, lam, _ = scope.correlate(gen, z_fixed, labels, C, m, z_all_fixed, _detached(prepared_graph))
            negatives = scope.interpolate(gen, z_all_fixed, lam, self.gamma, labels_all, C_all, m, self.rng, graph,
                                          None if geometry is None else geometry.detach())
            out.update(scope.generator_loss(z_all_fixed, lam, negatives, gen.classifier(negatives.embeddings),
                                            cfg.loss_weights, graph))
            scope.require_finite("J_gen", out["J_gen"], NonFiniteLossError)
            scope.backward(out["J_gen"])
            scope.sync(gen.gcl)
            _clip(gen.gcl, cfg.grad_clip)
            opt.gcl.step()

        # 7: running means for the next epoch (global values: the same on every rank)
        values = scope.values(out, z.device)
        self.running.add("j_m", values["J_m"])
        if "J_gen" in values:
            self.running.add("j_gen", values["J_gen"])
        return values

    def end_epoch(self) -> None:
        """Roll the running means over: this epoch's means become ``Jbar_m``, ``Jbar_gen``."""
        self.running.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"running": asdict(self.running), "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = RunningMeans(**state["running"])
        self.rng.set_state(state["rng"])
