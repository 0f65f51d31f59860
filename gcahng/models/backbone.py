"""The backbone interface and the registry of backbones, chosen by name.

A backbone maps images ``(B, 3, H, W)`` (normalised with the spec's mean and std) to
pooled features ``(B, feature_dim)``. Register your own with::

    @BACKBONES.register("my_net")
    class MyNet(Backbone):
        feature_dim = 256
        def __init__(self, image_size: int) -> None: ...
        def forward(self, images): ...
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from gcahng.models.spec import IMAGENET_MEAN, IMAGENET_STD
from gcahng.registry import Registry


class Backbone(nn.Module):
    """Base class of the feature extractors of :class:`~gcahng.models.EmbeddingModel`.

    Subclasses are constructed as ``cls(image_size)`` and must build their layers in
    ``__init__`` so that construction under ``torch.device("meta")`` skips the work of
    random initialisation when a state dict is loaded right after.

    Class attributes:
        feature_dim:      size of the pooled features.
        plain_prefix:     where the keys of the library's own state dict (torchvision,
                          timm) sit inside this module, e.g. ``"model."``.
        unused_prefixes:  keys, relative to this module, of parts that plain or released
                          state dicts hold but this network drops (ImageNet classifiers,
                          auxiliary heads); they are ignored when loading.
        orthogonal_head:  initialise the head's Linear orthogonally with zero bias.
        head_gain:        gain of that orthogonal initialisation; below 1 it starts the
                          embedding (and the N-pair logits, which are unnormalised dot
                          products) at a smaller scale.
        pretrained_source: human-readable origin of the standard weights, ``None`` when
                          there are none.
        input_mean, input_std: per-channel (RGB) normalisation of pixel values in [0, 1]
                          that the network expects; ImageNet's unless its weights differ.
                          The model spec, and so every transform, takes them from here.
    """

    feature_dim: ClassVar[int]
    plain_prefix: ClassVar[str] = ""
    unused_prefixes: ClassVar[tuple[str, ...]] = ()
    orthogonal_head: ClassVar[bool] = False
    head_gain: ClassVar[float] = 1.0
    pretrained_source: ClassVar[str | None] = None
    input_mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    input_std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    @classmethod
    def download_pretrained(cls) -> dict[str, Tensor]:
        """The standard weights as a plain (library-keyed) state dict, from the cache or the
        network. Raises ``OSError`` (``URLError``, ``ConnectionError``, ...) when it cannot."""
        raise NotImplementedError(f"{cls.__name__} has no pretrained weights")

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Adjust a state dict keyed like this module to its geometry (e.g. resample position
        embeddings for another image size). The default returns it unchanged."""
        return state_dict


BACKBONES: Registry[type[Backbone]] = Registry("backbone")


def avg_max_pool(feature_map: Tensor) -> Tensor:
    """Global average pool plus global max pool: ``(B, C, H, W) -> (B, C)``."""
    return feature_map.mean(dim=(2, 3)) + feature_map.amax(dim=(2, 3))


def conv_layers_to_initialise(module: nn.Module) -> list[nn.Conv2d]:
    """The Conv2d layers of ``module`` for a custom initialisation; none when it was built on
    the meta device, where initialising is wasted work (and ``normal_`` there would import
    ``torch._dynamo``, about a second)."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return [] if any(c.weight.is_meta for c in convs) else convs


def load_torch_hub_state_dict(url: str) -> dict[str, Tensor]:
    """A state dict from ``url`` through torch's hub cache (``$TORCH_HOME/hub/checkpoints``),
    downloaded (with its hash checked) only when not cached."""
    return torch.hub.load_state_dict_from_url(
        url, map_location="cpu", progress=True, check_hash=True, weights_only=True
    )
