"""The loss bookkeeping of one training step on one rank of a distributed run.

:class:`RankScope` gives :class:`~gcahng.training.TrainingStep` the global batch, the graph,
the negatives and every loss term as this rank's *share* of the global value (see
:mod:`gcahng.distributed.collectives` for the convention): the shares of all ranks sum to the
value a single process computes on the global batch, and backward runs on ``W * share``.

``graph_scope: global``: one graph over all ranks. Each rank computes the rows of its own
nodes (:mod:`gcahng.distributed.graph`), its anchors' negatives and, for losses that are sums
over anchor rows (``MetricLoss.splits_by_anchor_rows``: N-pair), its anchors' loss rows
normalised by the global counts; a loss that is not (Proxy-Anchor, Multi-Similarity, triplet)
is computed by every rank on the gathered global batch and contributes ``1/W`` of itself.
``J_gce``, ``J_cls``, ``J_soft`` and ``J_sim`` are means over rows that every rank holds equally
many of (the local mean over ``W``); ``J_div`` is a function of a sum over source rows (one
all-reduce of that sum).

``graph_scope: local``: every rank is a single process on its own slice; the global loss is
the mean of the ranks' losses.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from gcahng.cacai import SyntheticNegatives
from gcahng.distributed.collectives import (
    all_gather,
    all_reduce_sum,
    all_reduce_values,
    gather_chunk_major,
)
from gcahng.distributed.context import DistContext
from gcahng.distributed.graph import build_rows_graph
from gcahng.distributed.runtime import average_gradients
from gcahng.errors import GcahngError
from gcahng.hyperparameters import LossWeights
from gcahng.losses.generator import (
    combine_generator_terms,
    diversity_from_spread,
    generator_loss,
    hardness_loss,
    label_preserving_loss,
    source_spread,
)


def gather_negatives(negatives: SyntheticNegatives, ctx: DistContext, labels_all: Tensor, C: int, m: int):
    """All ranks' negatives (each made for its own anchors) as the global batch's ``m*C*C`` rows."""
    embeddings = gather_chunk_major(negatives.embeddings, ctx, m)  # rows t*C*C + a*C + n
    slots = torch.arange(C, device=embeddings.device)
    own = (slots[:, None] == slots[None, :]).expand(m, C, C)
    anchor = torch.arange(m, device=embeddings.device)[:, None] * C + slots[None, :]
    return SyntheticNegatives(
        embeddings=embeddings,
        labels=labels_all[:C].repeat(m * C),
        own_class=own.reshape(-1),
        anchor_index=anchor[:, :, None].expand(m, C, C).reshape(-1),
    )


class RankScope:
    """One rank's part of a training step (see the module docstring).

    ``classes_per_batch`` passed to its methods is the rank's LOCAL ``C_local``; the global
    batch has ``C = W * C_local`` class slots.
    """

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        self.world_size = ctx.world_size
        self.spans = ctx.is_global

    def _slots(self, local: int) -> slice:
        return slice(self.ctx.rank * local, (self.ctx.rank + 1) * local)

    def graph_classes(self, classes_per_batch: int) -> int:
        """The class slots of the batch the graph and losses see, from this rank's ``C / W``."""
        return classes_per_batch * self.world_size if self.spans else classes_per_batch

    def batch(self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> tuple[Tensor, Tensor, int]:
        """``(z_all, labels_all, C)``: the batch the graph and losses see (global or own)."""
        if not self.spans:
            return z, labels, classes_per_batch
        z_all = gather_chunk_major(z, self.ctx, per_class)
        return z_all, gather_chunk_major(labels, self.ctx, per_class), self.graph_classes(classes_per_batch)

    def metric(self, loss: nn.Module, z_all: Tensor, labels_all: Tensor, C: int, m: int) -> Tensor:
        if self.spans and getattr(loss, "splits_by_anchor_rows", False):
            return loss(z_all, labels_all, C, m, anchor_slots=self._slots(C // self.world_size))
        return loss(z_all, labels_all, C, m) / self.world_size

    def prepare(self, z_all: Tensor, labels_all: Tensor, C: int, m: int) -> tuple[None, None]:
        """Nothing is prepared: :meth:`correlate` and :meth:`interpolate` build the rank's own."""
        return None, None

    def correlate(self, gen: nn.Module, z: Tensor, labels: Tensor, local: int, m: int, z_all: Tensor,
                  graph: None = None, lambda_grad: bool = True):
        """``(graph, lam, node_logits)``: the rank's rows of the global graph, or its own graph."""
        if not self.spans:
            return gen.correlate(z, labels, local, m, lambda_grad=lambda_grad)
        graph = build_rows_graph(z, labels, local, m, self.ctx, z_all)
        lam, node_logits = gen.gcl(graph, lambda_grad=lambda_grad)
        return graph, lam, node_logits

    def interpolate(self, gen, z_all, lam, gamma, labels_all, C, m, rng, graph, geometry: None = None
                    ) -> SyntheticNegatives:
        """CACAI for the rank's anchors (global scope) or its whole batch."""
        slots = self._slots(C // self.world_size) if self.spans else None
        return gen.interpolate(z_all, lam, gamma, labels_all, C, m, rng, graph, anchor_slots=slots)

    def synthetic(self, loss: nn.Module, z_all: Tensor, negatives, labels_all: Tensor, C: int, m: int) -> Tensor:
        if not self.spans:
            return loss.synthetic(z_all, negatives, labels_all, C, m) / self.world_size
        if getattr(loss, "splits_by_anchor_rows", False):
            return loss.synthetic(z_all, negatives, labels_all, C, m, anchor_slots=self._slots(C // self.world_size))
        everyone = gather_negatives(negatives, self.ctx, labels_all, C, m)
        return loss.synthetic(z_all, everyone, labels_all, C, m) / self.world_size

    def rows_mean(self, local_mean: Tensor) -> Tensor:
        """Share of a mean over rows of which every rank holds equally many."""
        return local_mean / self.world_size

    def generator_loss(self, z_all, lam, negatives, logits, weights: LossWeights, graph) -> dict[str, Tensor]:
        if not self.spans:
            return {k: v / self.world_size for k, v in generator_loss(z_all, lam, negatives, logits, weights,
                                                                       graph=graph).items()}
        B = graph.layout.num_nodes
        spread = all_reduce_sum(source_spread(lam, graph.own.numel()), self.ctx)
        W = self.world_size
        return combine_generator_terms(
            label_preserving_loss(logits, negatives) / W, hardness_loss(z_all, negatives) / W,
            diversity_from_spread(spread, B * B) / W, weights,
        )

    def backward(self, share: Tensor) -> None:
        (share * self.world_size).backward()

    def sync(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over the ranks (one flat all-reduce), unless it is
        wrapped in DDP, which has averaged them during backward.

        The GCL must not be wrapped in DDP without ``find_unused_parameters``: its last edge
        update and ``W_lam`` get no gradient in the ``J_metric`` pass (``lambda`` is detached
        for CACAI there), which DDP reports as an error in the next forward.
        """
        if not isinstance(module, DistributedDataParallel):
            average_gradients(module, self.ctx.group)

    def require_finite(self, name: str, value: Tensor, error: type[GcahngError]) -> None:
        """Raise ``error`` on every rank when ``value`` is not finite on any rank, naming the ranks."""
        flag = torch.tensor([float(bool(torch.isfinite(value.detach()).all()))], device=value.device)
        flags = all_gather(flag, self.ctx)
        bad = [r for r, ok in enumerate(flags.tolist()) if not ok]
        if bad:
            raise error(
                f"{name} became NaN or infinite on rank {', '.join(map(str, bad))}; stopping every rank before "
                "any update from it (lower the learning rate or check the inputs)"
            )

    def values(self, shares: dict[str, Tensor], device: torch.device) -> dict[str, float]:
        """The global value of every term (the sum of the ranks' shares)."""
        return all_reduce_values({k: float(v.detach()) for k, v in shares.items()}, self.ctx, device)

