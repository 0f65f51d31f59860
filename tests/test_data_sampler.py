"""ClassBalancedBatchSampler: the guarantees, checked over many batches."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gcahng.data import ClassBalancedBatchSampler
from gcahng.errors import InputError

RNG = np.random.default_rng(0)
LABELS = np.repeat(np.arange(30), RNG.integers(1, 12, 30))  # class sizes 1..11, some below m
LABELS = RNG.permutation(LABELS)


def _class_major(batch: list[int], C: int, m: int) -> np.ndarray:
    """The (C, m) table of a chunk-major batch: row c = class slot c's m images."""
    return np.asarray(batch).reshape(m, C).T


@pytest.mark.parametrize("C,m", [(5, 3), (8, 2), (4, 1)])
def test_batches_are_C_distinct_classes_times_m_chunk_major(C, m):
    sampler = ClassBalancedBatchSampler(LABELS, C, m, seed=7)
    assert len(sampler) == len(LABELS) // (C * m)
    sizes = Counter(LABELS.tolist())
    for epoch in range(5):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        for batch in batches:
            assert len(batch) == C * m
            table = _class_major(batch, C, m)
            classes = LABELS[table]
            assert (classes == classes[:, :1]).all()  # each slot holds one class in every chunk
            assert len(set(classes[:, 0].tolist())) == C  # distinct classes
            for t in range(m):  # chunk t lists the classes in the same order
                assert LABELS[batch[t * C : (t + 1) * C]].tolist() == classes[:, 0].tolist()
            for row, cls in zip(table, classes[:, 0], strict=False):
                distinct = len(set(row.tolist()))
                assert distinct == min(m, sizes[cls])  # distinct images, replacement only when too few


def test_small_classes_are_sampled_with_replacement():
    labels = np.array([0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    sampler = ClassBalancedBatchSampler(labels, 2, 3, seed=0)
    seen = [row for b in sampler for row in _class_major(b, 2, 3).tolist() if labels[row[0]] == 0]
    assert seen and all(row == [0, 0, 0] for row in seen)


@pytest.mark.parametrize("num_classes,C", [(7, 3), (10, 4), (13, 6), (30, 4)])
def test_classes_appear_equally_often_within_an_epoch(num_classes, C):
    labels = np.repeat(np.arange(num_classes), 9)
    sampler = ClassBalancedBatchSampler(labels, C, 3, seed=2)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        draws = Counter(int(labels[i]) for batch in sampler for i in batch[:C])
        counts = [draws.get(k, 0) for k in range(num_classes)]
        assert max(counts) - min(counts) <= 1


def test_each_image_is_used_once_before_any_repeats():
    labels = np.repeat(np.arange(10), 6)  # 5 batches of 4 x 3 = each class drawn twice = 6 images
    sampler = ClassBalancedBatchSampler(labels, 4, 3, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert sorted(i for batch in sampler for i in batch) == list(range(60))


def test_deterministic_given_seed_and_epoch():
    a = ClassBalancedBatchSampler(LABELS, 5, 2, seed=3)
    b = ClassBalancedBatchSampler(LABELS, 5, 2, seed=3)
    assert list(a) == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(ClassBalancedBatchSampler(LABELS, 5, 2, seed=4)) != list(
        ClassBalancedBatchSampler(LABELS, 5, 2, seed=3)
    )


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_take_disjoint_class_slots_that_join_to_the_single_process_batch(world_size):
    C, m = 6, 2
    single = ClassBalancedBatchSampler(LABELS, C, m, seed=5)
    single.set_epoch(2)
    reference = list(single)
    per_rank = []
    for rank in range(world_size):
        sampler = ClassBalancedBatchSampler(LABELS, C, m, seed=5, rank=rank, world_size=world_size)
        sampler.set_epoch(2)
        assert len(sampler) == len(reference)
        per_rank.append(list(sampler))
    for step, batch in enumerate(reference):
        slices = [np.asarray(per_rank[rank][step]) for rank in range(world_size)]
        assert all(len(s) == C // world_size * m for s in slices)
        # chunk t of the global batch is chunk t of rank 0, then of rank 1, ...
        joined = np.concatenate([s.reshape(m, -1) for s in slices], axis=1).reshape(-1)
        assert joined.tolist() == batch
        classes = [set(LABELS[s].tolist()) for s in slices]
        assert sum(len(c) for c in classes) == C  # disjoint classes


def test_invalid_arguments():
    with pytest.raises(InputError, match="only 30 classes"):
        ClassBalancedBatchSampler(LABELS, 31, 2)
    with pytest.raises(InputError, match="no batch"):
        ClassBalancedBatchSampler(np.arange(6), 4, 2)
    with pytest.raises(InputError, match="rank"):
        ClassBalancedBatchSampler(LABELS, 4, 2, rank=2, world_size=2)
    with pytest.raises(InputError, match="classes_per_batch=5 is not divisible by the 2 processes"):
        ClassBalancedBatchSampler(LABELS, 5, 2, rank=0, world_size=2)
    with pytest.raises(InputError, match="integer"):
        ClassBalancedBatchSampler(np.array([0.5, 1.5]), 1, 1)
