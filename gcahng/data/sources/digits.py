"""``digits``: the embedded default dataset, no download needed.

The 1,797 8x8 handwritten digits bundled with scikit-learn (``load_digits``), grey levels
0..16 scaled to 0..255, upscaled to ``size`` x ``size`` pixels with bilinear interpolation
(smooth strokes suit small CNNs better than nearest-neighbour blocks) and replicated to RGB.
Digits 0-4 are ``train`` (class ids 0..4), digits 5-9 ``test``. ``paths`` are synthetic
identifiers ``"digits/NNNN"``: NNNN is the image's index in scikit-learn's array.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gcahng.data.records import SplitRecords
from gcahng.data.sources.base import DATASETS, DatasetSource
from gcahng.errors import InputError

HOW_TO_GET = "digits is bundled with scikit-learn; it needs no root and no download."


def digit_images(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (1797, size, size, 3) and int64 digits (1797,)."""
    from sklearn.datasets import load_digits

    if size < 8:
        raise InputError(f"digits size must be >= 8 pixels, got {size}")
    digits = load_digits()
    grey = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    resized = np.stack([np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR)) for g in grey])
    return np.repeat(resized[..., None], 3, axis=3), digits.target.astype(np.int64)


def read_digits(root: Path | None = None, size: int = 32) -> dict[str, SplitRecords]:
    """``train`` = digits 0-4, ``test`` = digits 5-9, in scikit-learn's order; ``root`` is ignored."""
    images, targets = digit_images(size)
    result = {}
    for split, digits in (("train", range(0, 5)), ("test", range(5, 10))):
        rows = np.flatnonzero(np.isin(targets, list(digits)))
        result[split] = SplitRecords(
            [f"digits/{i:04d}" for i in rows], targets[rows], {d: str(d) for d in digits}, images=images[rows]
        )
    return result


DATASETS.register("digits")(
    DatasetSource(
        name="digits",
        read=read_digits,
        splits=("train", "test"),
        eval_splits=("test",),
        how_to_get=HOW_TO_GET,
        needs_root=False,
        expected={"train": (5, 901), "test": (5, 896)},
    )
)
