"""Test-time preprocessing, defined once, in PIL and numpy only (no torch, so serving stays torch-free).

Resize of the shorter side (bilinear, antialiased: PIL's resize, which torchvision's
``Resize`` calls for PIL images), centre crop, scaling to [0, 1] and per-channel
normalisation with the model spec's ``mean``/``std``: value for value what
``gcahng.data.build_transforms(False, ...)`` does (the tests compare the two). Retrieval,
evaluation, the exported ONNX model's metadata and the server all use :class:`TestPreprocess`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from gcahng.errors import InputError


def default_resize(image_size: int) -> int:
    """The standard test-time resize side for a crop of ``image_size``: ``round(image_size * 256 / 224)``."""
    return round(image_size * 256 / 224)


class TestPreprocess:
    """PIL RGB image -> float32 array (3, image_size, image_size), normalised with ``mean``/``std``.

    ``resize_size``: side in pixels the shorter image side is resized to before the centre
    crop; ``None`` means :func:`default_resize`. ``mean``/``std``: RGB, for values in [0, 1].
    """

    __test__ = False  # not a pytest class

    def __init__(self, image_size: int, resize_size: int | None, mean: Sequence[float], std: Sequence[float]) -> None:
        self.image_size = int(image_size)
        self.resize_size = default_resize(self.image_size) if resize_size is None else int(resize_size)
        if self.image_size < 1 or self.resize_size < self.image_size:
            raise InputError(f"need 1 <= image_size <= resize_size, got {self.image_size} and {self.resize_size}")
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all() and (self.std > 0).all()):
            raise InputError(f"need finite mean and std > 0 for the 3 channels, got {list(mean)} and {list(std)}")

    @classmethod
    def for_spec(cls, spec: Any) -> TestPreprocess:
        """The preprocessing a ``ModelSpec`` (or an object with its fields) asks for."""
        return cls(spec.image_size, spec.resize_size, spec.mean, spec.std)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (as stored in an ONNX model's metadata); :meth:`from_dict` reads them back."""
        return {"resize_shorter_side": self.resize_size, "center_crop": self.image_size,
                "resize": "bilinear, antialiased (PIL)", "scale": "1/255", "channel_order": "RGB",
                "layout": "NCHW", "mean": [float(v) for v in self.mean.ravel()],
                "std": [float(v) for v in self.std.ravel()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestPreprocess:
        try:
            return cls(data["center_crop"], data["resize_shorter_side"], data["mean"], data["std"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"malformed preprocessing description {dict(data)!r}: {err}") from err

    def __call__(self, image: Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        short, long = min(width, height), max(width, height)
        new_short, new_long = self.resize_size, int(self.resize_size * long / short)
        size = (new_short, new_long) if width <= height else (new_long, new_short)
        if size != (width, height):
            image = image.resize(size, Image.BILINEAR)
        left = int(round((size[0] - self.image_size) / 2.0))
        top = int(round((size[1] - self.image_size) / 2.0))
        image = image.crop((left, top, left + self.image_size, top + self.image_size))
        pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
        return (pixels - self.mean) / self.std

    def batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Preprocessed images stacked to (B, 3, image_size, image_size) float32."""
        return np.stack([self(image) for image in images]) if images else np.zeros(
            (0, 3, self.image_size, self.image_size), np.float32)

    def __repr__(self) -> str:
        return f"TestPreprocess(resize={self.resize_size}, crop={self.image_size})"
