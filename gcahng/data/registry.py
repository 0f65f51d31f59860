"""The dataset registry and ``create_dataset``.

A dataset is a :class:`DatasetSource`: a reader that turns a root folder into per-split
:class:`~gcahng.data.records.SplitRecords`, plus what the CLI needs to tell users how to get
it. Register your own with ``DATASETS.register("mine")(DatasetSource(...))``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcahng.data.dataset import ImageDataset, Transform
from gcahng.data.records import SplitRecords, hold_out_validation
from gcahng.errors import DataError, InputError
from gcahng.registry import Registry


@dataclass(frozen=True)
class ArchiveSpec:
    """A downloadable archive: where from, its exact size in bytes and SHA-256."""

    url: str
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetSource:
    """How to read one dataset and how users obtain it.

    read: ``(root: Path | None, **options) -> {split: SplitRecords}``, always with ``"train"``.
    splits: the split names ``read`` returns (``"val"`` is added by ``create_dataset``).
    eval_splits: the splits evaluation uses, e.g. ``("test",)`` or ``("query", "gallery")``.
    how_to_get: the official source and the layout ``read`` expects, shown in errors.
    expected: official ``split -> (classes, images)``, compared by ``gcahng data check``.
    archive: set when ``gcahng data download`` can fetch and verify the data itself.
    """

    name: str
    read: Callable[..., dict[str, SplitRecords]]
    splits: tuple[str, ...]
    eval_splits: tuple[str, ...]
    how_to_get: str
    needs_root: bool = True
    expected: dict[str, tuple[int, int]] = field(default_factory=dict)
    archive: ArchiveSpec | None = None


DATASETS: Registry[DatasetSource] = Registry("dataset")


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


# Registers the built-in datasets. At the end of this module, because the sources import the
# names defined above; every import path to DATASETS goes through here.
from gcahng.data import sources as _sources  # noqa: E402,F401
