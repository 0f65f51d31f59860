"""Embedding many images (files or a dataset split), skipping and listing the unreadable ones."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from gcahng.errors import DataError, InputError
from gcahng.retrieval.embedder import Embedder
from gcahng.retrieval.files import read_image

if TYPE_CHECKING:
    from gcahng.data.dataset import ImageDataset


@dataclass(frozen=True)
class EmbeddedImages:
    """Embeddings (N, D) of the readable images; ``kept`` are their positions in the input list,
    ``skipped`` the (path, reason) of the others."""

    embeddings: np.ndarray
    kept: list[int]
    skipped: list[tuple[str, str]]


class _PathImages:
    """Image ``i`` read from ``paths[i]``."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths

    def __call__(self, i: int) -> Image.Image:
        return read_image(self.paths[i])


class _DatasetImages:
    """Image ``i`` = ``dataset.load_image(indices[i])`` (works for in-memory datasets too)."""

    def __init__(self, dataset: ImageDataset, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __call__(self, i: int) -> Image.Image:
        return self.dataset.load_image(int(self.indices[i]))


class _Preprocessed(Dataset):
    """Preprocessed image ``i``; an unreadable one yields the reason instead."""

    def __init__(self, names: Sequence[str], load: Callable[[int], Image.Image], transform: Callable) -> None:
        self.names, self.load, self.transform = names, load, transform

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, str | None]:
        try:
            return self.transform(self.load(i)), i, None
        except DataError as err:
            return None, i, str(err).removeprefix(f"{self.names[i]}: ")


def _collate(samples: list[tuple[np.ndarray | None, int, str | None]]):
    images = [image for image, _, _ in samples if image is not None]
    kept = [i for image, i, _ in samples if image is not None]
    failures = [(i, reason) for image, i, reason in samples if image is None]
    return (torch.from_numpy(np.stack(images)) if images else None), kept, failures


def _embed(
    embedder: Embedder,
    names: Sequence[str],
    load: Callable[[int], Image.Image],
    *,
    batch_size: int,
    workers: int,
    progress: bool,
    desc: str,
) -> EmbeddedImages:
    if batch_size < 1 or workers < 0:
        raise InputError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    loader = DataLoader(_Preprocessed(names, load, embedder.transform), batch_size=batch_size,
                        num_workers=workers, collate_fn=_collate)
    chunks = [np.zeros((0, embedder.embedding_dim), np.float32)]
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    with tqdm(total=len(names), desc=desc, unit="img", disable=not progress) as bar:
        for images, batch_kept, failures in loader:
            if images is not None:
                chunks.append(embedder.embed_batch(images))
            kept.extend(batch_kept)
            skipped.extend((str(names[i]), reason) for i, reason in failures)
            bar.update(len(batch_kept) + len(failures))
    return EmbeddedImages(np.concatenate(chunks), kept, skipped)


def embed_files(
    embedder: Embedder,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    desc: str = "embedding",
) -> EmbeddedImages:
    """Embed the images at ``paths``; unreadable ones are skipped and reported in ``skipped``.

    ``workers`` > 0 decodes images in that many background processes. ``progress`` shows a
    tqdm bar on stderr.
    """
    names = [str(p) for p in paths]
    return _embed(embedder, names, _PathImages(names), batch_size=batch_size, workers=workers,
                  progress=progress, desc=desc)


def embed_dataset(
    embedder: Embedder,
    dataset: ImageDataset,
    indices: Sequence[int] | None = None,
    *,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    desc: str = "embedding",
) -> EmbeddedImages:
    """Embed images ``indices`` (default: all) of ``dataset``; ``kept`` are positions in ``indices``.

    Unreadable images are skipped, never replaced by another image of their class.
    """
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    names = [dataset.paths[i] for i in indices]
    return _embed(embedder, names, _DatasetImages(dataset, indices), batch_size=batch_size, workers=workers,
                  progress=progress, desc=desc)


def skipped_summary(skipped: Sequence[tuple[str, str]], max_listed: int = 10) -> str:
    """A warning listing up to ``max_listed`` skipped files with their reasons, and the count of the rest."""
    lines = [f"skipped {len(skipped)} unreadable image(s):"]
    lines += [f"  {path}: {reason}" for path, reason in skipped[:max_listed]]
    if len(skipped) > max_listed:
        lines.append(f"  ... and {len(skipped) - max_listed} more")
    return "\n".join(lines)
