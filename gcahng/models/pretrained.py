"""Fetching a backbone's standard pretrained weights, with a clear error when offline."""
from __future__ import annotations

from torch import Tensor

from gcahng.errors import InputError, OfflineError
from gcahng.models.backbone import BACKBONES


def fetch_pretrained(name: str) -> dict[str, Tensor]:
    """The standard weights of backbone ``name`` as a plain state dict.

    They come from the framework's cache (torch hub for torchvision weights, the Hugging
    Face hub cache for timm) and are downloaded into it when missing. A failed download
    raises ``OfflineError`` naming ``--weights PATH`` and ``--no-pretrained``.
    """
    backbone_cls = BACKBONES.get(name)
    source = backbone_cls.pretrained_source
    if source is None:
        raise InputError(
            f"backbone {name!r} has no pretrained weights; build it with pretrained=False "
            "(--no-pretrained) or give a weights file (--weights PATH)"
        )
    try:
        return backbone_cls.download_pretrained()
    except OSError as err:  # URLError, ConnectionError, requests/huggingface_hub errors are OSErrors
        raise OfflineError(
            f"could not find the pretrained {name} weights ({source}) in the local cache nor "
            f"download them: {err}. Without network access, pass --weights PATH with a local copy (a "
            "torchvision/timm state dict or a gcahng checkpoint), or --no-pretrained to start "
            "from random initialisation."
        ) from err
