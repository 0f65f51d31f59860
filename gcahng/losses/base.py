"""The metric-loss contract: what ``METRIC_LOSSES`` holds and how the training step calls it."""
from __future__ import annotations

import inspect
from typing import ClassVar

from torch import Tensor, nn

from gcahng.cacai import SyntheticNegatives
from gcahng.registry import check_module_class

#: The constructor keywords a metric loss may take; each is passed only when the constructor
#: names it (:func:`gcahng.training.build.build_metric_loss`), so every other argument needs a default.
CONSTRUCTOR_KEYWORDS = ("num_classes", "embedding_dim")


class MetricLoss(nn.Module):
    """Base class of the metric losses ``J_m`` / ``J_syn`` (method.md §5).

    Built as ``cls(num_classes=K, embedding_dim=D)``, each keyword given only if the constructor
    takes it. ``lr_multiplier``: learning-rate factor of the loss's own parameters (proxies)
    relative to the embedding head, read by :func:`gcahng.training.build_optimizers`.
    ``splits_by_anchor_rows``: see below.
    """

    lr_multiplier: ClassVar[float] = 1.0
    #: True when ``forward`` and ``synthetic`` take ``anchor_slots=slice`` (score only those
    #: anchors' rows, normalised by the whole batch's counts, from negatives made for them):
    #: a distributed step then splits the loss by rows; otherwise every rank computes it on
    #: the gathered global batch.
    splits_by_anchor_rows: ClassVar[bool] = False

    def forward(self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int) -> Tensor:
        """``J_m`` (scalar) of the chunk-major batch ``z`` (C*m, D) with ``labels`` (C*m,)."""
        raise NotImplementedError

    def synthetic(
        self, z: Tensor, negatives: SyntheticNegatives, labels: Tensor, classes_per_batch: int, per_class: int
    ) -> Tensor:
        """``J_syn`` (scalar): the batch scored against CACAI's ``m*C*C`` synthetic negatives
        (rows with ``negatives.own_class`` are not negatives: mask or replace them)."""
        raise NotImplementedError


def check_metric_loss_class(obj: object) -> None:
    """Raise :class:`~gcahng.errors.InputError` unless ``obj`` is an ``nn.Module`` subclass with a
    ``synthetic`` method, constructible from the :data:`CONSTRUCTOR_KEYWORDS` it names."""
    try:
        names = inspect.signature(obj).parameters if isinstance(obj, type) else {}
    except (TypeError, ValueError):
        names = {}
    check_module_class(
        obj, "metric loss", nn.Module, call="num_classes=..., embedding_dim=... (those it takes)",
        kwargs={k: 1 for k in CONSTRUCTOR_KEYWORDS if k in names}, methods=("synthetic",),
    )
