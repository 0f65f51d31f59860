"""The dataset registry ``DATASETS`` and what an entry is (:class:`DatasetSource`).

A leaf module: the built-in sources import it to register themselves, and importing
:mod:`gcahng.data.sources` (which every path to ``DATASETS`` does) registers them all.
Register your own with ``DATASETS.register("mine")(DatasetSource(...))``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gcahng.data.records import SplitRecords
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
