"""``ClassBalancedBatchSampler``: batches of ``C`` distinct classes x ``m`` images, chunk-major."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import BatchSampler

from gcahng.errors import InputError


class _Cycle:
    """Hands out items of ``items`` in reshuffled rounds; one ``take(k)`` never repeats an item."""

    def __init__(self, items: np.ndarray, rng: np.random.Generator) -> None:
        self.items = items
        self.rng = rng
        self.queue = rng.permutation(items)
        self.pos = 0

    def take(self, k: int) -> np.ndarray:
        left = self.queue[self.pos :]
        if len(left) >= k:
            self.pos += k
            return left[:k]
        fresh = self.rng.permutation(self.items)
        # Items still waiting in this round go last in the next, so a draw stays distinct.
        waiting = np.isin(fresh, left)
        self.queue = np.concatenate([left, fresh[~waiting], fresh[waiting]])
        self.pos = k
        return self.queue[:k]


class ClassBalancedBatchSampler(BatchSampler):
    """Yields index lists of ``C`` distinct classes x ``m`` images, in chunk-major order.

    Position ``t * C + c`` of a batch holds image ``t`` (of ``m``) of class slot ``c`` (of ``C``),
    so every chunk of ``C`` consecutive indices lists the batch's classes in the same order
    (method.md §1). Per epoch:

    - there are ``floor(N / (C*m))`` batches; with ``world_size`` ranks every rank draws the
      same global batch and yields its slice of the class slots: rank ``r`` takes slots
      ``r*C/W .. (r+1)*C/W - 1``, each of its ``m`` chunks in order, so it yields
      ``C/W * m`` indices, chunk-major over its own slots, and the ranks' slices joined chunk
      by chunk (chunk ``t`` of rank 0, of rank 1, ...) are the batch one process draws (``C`` must be
      divisible by ``world_size``);
    - classes are drawn in reshuffled rounds over all classes (each class appears about
      equally often, never twice in one batch), and each class's images in reshuffled rounds
      over its images (``m`` distinct images per draw);
    - a class with ``n < m`` images contributes all ``n`` and ``m - n`` more drawn from them
      with replacement;
    - the batches depend only on ``labels``, ``seed`` and the epoch set with
      :meth:`set_epoch` (call it before each epoch, as with ``DistributedSampler``).

    labels: (N,) integer class label of each dataset index (any integer ids).
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        classes_per_batch: int,
        per_class: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise InputError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
        if classes_per_batch < 1 or per_class < 1:
            raise InputError(f"classes_per_batch and per_class must be >= 1, got {classes_per_batch} and {per_class}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise InputError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        classes, inverse = np.unique(labels, return_inverse=True)
        if classes_per_batch > len(classes):
            raise InputError(
                f"classes_per_batch={classes_per_batch} but the labels hold only {len(classes)} classes"
            )
        batch_size = classes_per_batch * per_class
        if classes_per_batch % world_size:
            raise InputError(f"classes_per_batch={classes_per_batch} is not divisible by the {world_size} processes; "
                             "each takes the same number of a batch's classes")
        if len(labels) // batch_size == 0:
            raise InputError(f"{len(labels)} images give no batch of {classes_per_batch} x {per_class} = {batch_size}")
        super().__init__(range(len(labels)), batch_size // world_size, drop_last=True)
        self.classes_per_batch = classes_per_batch
        self.per_class = per_class
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(classes) + 1))
        self._members = [order[bounds[k] : bounds[k + 1]] for k in range(len(classes))]
        self._total_batches = len(labels) // batch_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._total_batches

    def __iter__(self) -> Iterator[list[int]]:
        local = self.classes_per_batch // self.world_size
        for batch in self._epoch_batches():
            chunks = batch.reshape(self.per_class, self.classes_per_batch)
            yield chunks[:, self.rank * local : (self.rank + 1) * local].reshape(-1).tolist()

    def _epoch_batches(self) -> list[np.ndarray]:
        """The global batches of the current epoch, each a chunk-major (C*m,) index array."""
        rng = np.random.default_rng([self.seed, self.epoch])
        class_cycle = _Cycle(np.arange(len(self._members)), rng)
        image_cycles: dict[int, _Cycle] = {}
        m = self.per_class
        batches = []
        for _ in range(self._total_batches):
            rows = []
            for k in class_cycle.take(self.classes_per_batch).tolist():
                members = self._members[k]
                if len(members) < m:
                    extra = rng.choice(members, m - len(members), replace=True)
                    rows.append(np.concatenate([rng.permutation(members), extra]))
                else:
                    if k not in image_cycles:
                        image_cycles[k] = _Cycle(members, rng)
                    rows.append(image_cycles[k].take(m))
            batches.append(np.stack(rows).T.reshape(-1))  # (C, m) class-major -> chunk-major
        return batches

