"""Batching samples of an :class:`ImageDataset` and reporting the images that failed to load.

Training::

    loader = DataLoader(ds, batch_sampler=ClassBalancedBatchSampler(ds.labels, C, m),
                        num_workers=4, collate_fn=collate_batch)
    skipped = FailureLog()
    for batch in loader:                  # batch.images (B,3,H,W) in the sampler's order
        skipped.update(batch.failures)    # works the same with worker processes
        ...
    if skipped: print(skipped.summary())  # "skipped 2 unreadable images: ..."

Evaluation: ``DataLoader(ds, batch_size=..., shuffle=False, collate_fn=collate_batch)``;
``batch.indices`` gives each row's dataset index.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch.utils.data import default_collate

from gcahng.data.dataset import ImageFailure, Sample


class Batch(NamedTuple):
    """images: float (B, 3, H, W); labels: int64 (B,); indices: int64 (B,) dataset indices;
    failures: the :class:`ImageFailure` of each requested image that was replaced."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    failures: list[ImageFailure]


def collate_batch(samples: Sequence[Sample]) -> Batch:
    """Stack :class:`Sample` items in the given order into a :class:`Batch`.

    The images are stacked by ``default_collate``, which in a worker process writes them
    straight into shared memory (saving one copy per batch on the way to the main process).
    """
    images = default_collate([s[0] for s in samples])
    labels = torch.tensor([s[1] for s in samples], dtype=torch.int64)
    indices = torch.tensor([s[2] for s in samples], dtype=torch.int64)
    failures = [s[3] for s in samples if s[3] is not None]
    return Batch(images, labels, indices, failures)


class FailureLog:
    """Accumulates the failures of the batches of a run (unique per path, first reason kept)."""

    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}
        self.occurrences = 0

    def update(self, failures: Sequence[ImageFailure]) -> None:
        for failure in failures:
            self.occurrences += 1
            self._reasons.setdefault(failure.path, failure.reason)

    @property
    def paths(self) -> list[str]:
        return sorted(self._reasons)

    def __len__(self) -> int:
        return len(self._reasons)

    def __bool__(self) -> bool:
        return bool(self._reasons)

    def summary(self, max_listed: int = 10) -> str:
        """``"skipped N unreadable images (K times): <reason>; ..."``, at most ``max_listed`` named."""
        if not self._reasons:
            return "no unreadable images"
        listed = [self._reasons[p] for p in self.paths[:max_listed]]
        more = f"; ... and {len(self) - max_listed} more" if len(self) > max_listed else ""
        return (
            f"skipped {len(self)} unreadable image(s) ({self.occurrences} time(s), each replaced by "
            f"another image of its class): " + "; ".join(listed) + more
        )
