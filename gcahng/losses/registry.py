"""Registry of metric losses: ``METRIC_LOSSES.get(name)(num_classes=K, embedding_dim=D)``.

A metric loss is an ``nn.Module`` with ``forward(z, labels, C, m) -> J_m`` on a chunk-major
batch and ``synthetic(z, negatives, labels, C, m) -> J_syn`` scoring the CACAI negatives; the
contract, with shapes, is :class:`gcahng.losses.base.MetricLoss` (subclassing it is
recommended, not required). Registration checks the class (:func:`check_metric_loss_class`).
"""
from __future__ import annotations

from torch import nn

from gcahng.losses.base import check_metric_loss_class
from gcahng.registry import Registry

METRIC_LOSSES: Registry[type[nn.Module]] = Registry("metric loss", check=check_metric_loss_class)
