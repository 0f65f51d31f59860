"""Test-time preprocessing without torchvision (whose import costs about a second).

Resize of the shorter side, centre crop, scaling to [0, 1] and per-channel normalisation:
pixel for pixel what ``gcahng.data.build_transforms(False, ...)`` does (the tests compare
the two), so retrieval embeds images exactly as evaluation does.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image


class TestTransform:
    """PIL RGB image -> float tensor (3, image_size, image_size), normalised with ``mean``/``std``.

    ``resize_size``: side the shorter image side is resized to (bilinear, antialiased, as
    PIL does) before the centre crop; ``None`` means ``round(image_size * 256 / 224)``.
    """

    __test__ = False  # not a pytest class

    def __init__(self, image_size: int, resize_size: int | None, mean: Sequence[float], std: Sequence[float]) -> None:
        self.image_size = image_size
        self.resize_size = round(image_size * 256 / 224) if resize_size is None else resize_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    @classmethod
    def for_spec(cls, spec: Any) -> TestTransform:
        """The transform a ``ModelSpec`` asks for."""
        return cls(spec.image_size, spec.resize_size, spec.mean, spec.std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        width, height = image.size
        short, long = min(width, height), max(width, height)
        new_short, new_long = self.resize_size, int(self.resize_size * long / short)
        size = (new_short, new_long) if width <= height else (new_long, new_short)
        if size != (width, height):
            image = image.resize(size, Image.BILINEAR)
        left = int(round((size[0] - self.image_size) / 2.0))
        top = int(round((size[1] - self.image_size) / 2.0))
        image = image.crop((left, top, left + self.image_size, top + self.image_size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        return (pixels.float().div_(255.0) - self.mean) / self.std

    def __repr__(self) -> str:
        return f"TestTransform(resize={self.resize_size}, crop={self.image_size})"
