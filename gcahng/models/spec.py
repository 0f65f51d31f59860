"""The description of an embedding network that every checkpoint stores.

A :class:`ModelSpec` holds what is needed to rebuild the network for inference without
pretrained weights (the weights come from the checkpoint) and to prepare images for it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from gcahng.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the default input normalisation of a backbone
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture and input geometry of an :class:`~gcahng.models.EmbeddingModel`.

    backbone:      registered backbone name (see ``gcahng.models.BACKBONES``).
    embedding_dim: ``D``, the size of the (unnormalised) embedding.
    image_size:    side in pixels of the square crop the network sees.
    resize_size:   side in pixels the shorter image side is resized to before the centre
                   crop at test time; ``None`` means the standard ratio,
                   ``round(image_size * 256 / 224)``.
    mean, std:     per-channel normalisation (RGB, for pixel values in [0, 1]) the network
                   expects: the backbone's ``input_mean``/``input_std`` when the network is
                   created; ImageNet's in specs that predate them.
    """

    backbone: str
    embedding_dim: int
    image_size: int = 224
    resize_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise InputError(f"backbone must be a non-empty name, got {self.backbone!r}")
        for name in ("embedding_dim", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.resize_size is not None and (
            isinstance(self.resize_size, bool)
            or not isinstance(self.resize_size, int)
            or self.resize_size < self.image_size
        ):
            raise InputError(
                f"resize_size must be None or an integer >= image_size ({self.image_size}), "
                f"got {self.resize_size!r}"
            )
        for name in ("mean", "std"):
            value = tuple(getattr(self, name))
            if len(value) != 3 or not all(isinstance(v, (int, float)) for v in value):
                raise InputError(f"{name} must be three numbers (R, G, B), got {getattr(self, name)!r}")
            if name == "std" and min(value) <= 0:
                raise InputError(f"std must be positive, got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only, so ``torch.load(..., weights_only=True)`` reads it back."""
        out = asdict(self)
        out["mean"] = list(self.mean)
        out["std"] = list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ``InputError`` naming them."""
        if not isinstance(data, Mapping):
            raise InputError(f"a model spec must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown model spec key(s): {', '.join(map(str, unknown))}")
        missing = sorted(k for k in ("backbone", "embedding_dim") if k not in data)
        if missing:
            raise InputError(f"model spec lacks key(s): {', '.join(missing)}")
        return cls(**dict(data))
