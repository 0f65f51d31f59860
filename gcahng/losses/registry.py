"""Registry of metric losses: ``METRIC_LOSSES.get(name)(num_classes=K, embedding_dim=D)``.

A metric loss is an ``nn.Module`` with
``forward(z, labels, C, m) -> J_m`` on a chunk-major batch and
``synthetic(z, negatives, labels, C, m) -> J_syn`` scoring the CACAI negatives.
"""
from __future__ import annotations

from torch import nn

from gcahng.registry import Registry

METRIC_LOSSES: Registry[type[nn.Module]] = Registry("metric loss")
