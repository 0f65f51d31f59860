"""Reading a registered dataset's splits: ``read_splits``, ``create_dataset``, ``eval_splits``.

The registry itself (``DATASETS``, :class:`~gcahng.data.sources.base.DatasetSource`) is in
:mod:`gcahng.data.sources.base`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gcahng.data.dataset import ImageDataset, Transform
from gcahng.data.records import SplitRecords, hold_out_validation
from gcahng.data.sources import DATASETS
from gcahng.errors import DataError, InputError


def read_splits(
    name: str,
    root: str | Path | None = None,
    *,
    val_fraction: float | None = None,
    val_count: int | None = None,
    val_seed: int = 0,
    **options: Any,
) -> dict[str, SplitRecords]:
    """All splits of dataset ``name`` under ``root`` (with ``"val"`` when one is held out)."""
    source = DATASETS.get(name)
    if root is None and source.needs_root:
        raise DataError(f"dataset {name!r} needs a root folder (--data-root).\n{source.how_to_get}")
    splits = source.read(None if root is None else Path(root).expanduser(), **options)
    return hold_out_validation(splits, val_fraction=val_fraction, val_count=val_count, seed=val_seed)


def create_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    *,
    transform: Transform | None = None,
    val_fraction: float | None = None,
    val_count: int | None = None,
    val_seed: int = 0,
    **options: Any,
) -> ImageDataset:
    """The ``split`` of dataset ``name`` read from ``root`` as an :class:`ImageDataset`.

    split: ``"train"``, ``"val"``, ``"test"`` (``"query"``, ``"gallery"`` for ``inshop``).
        ``"val"`` exists when ``val_fraction`` or ``val_count`` holds out a seeded,
        class-disjoint part of the training classes; ``"train"`` then excludes them.
    options: passed to the dataset's reader (e.g. ``split_file`` for ``folder``).
    A missing or malformed root raises :class:`~gcahng.errors.DataError` naming the file.
    """
    source = DATASETS.get(name)
    known = set(source.splits) | ({"val"} if (val_fraction is not None or val_count is not None) else set())
    if split not in known:
        hint = " (hold out 'val' with val_fraction or val_count)" if split == "val" else ""
        raise InputError(f"dataset {name!r} has no split {split!r}; choose from {', '.join(sorted(known))}{hint}")
    splits = read_splits(name, root, val_fraction=val_fraction, val_count=val_count, val_seed=val_seed, **options)
    return ImageDataset(splits[split], name=name, split=split, transform=transform)


def eval_splits(name: str) -> tuple[str, ...]:
    """The splits evaluated for dataset ``name``: ``("test",)``, or ``("query", "gallery")`` for inshop."""
    return DATASETS.get(name).eval_splits
