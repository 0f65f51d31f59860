"""Small builders shared by the core-library tests."""
from __future__ import annotations

import torch


def chunk_major_labels(C: int, m: int, classes: list[int] | None = None) -> torch.Tensor:
    """Labels of a chunk-major batch: chunk t lists the same C classes."""
    base = torch.tensor(classes if classes is not None else list(range(C)))
    return base.repeat(m)


def random_batch(C: int, m: int, D: int, *, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(C * m, D, generator=g, dtype=dtype)
    return z, chunk_major_labels(C, m)
