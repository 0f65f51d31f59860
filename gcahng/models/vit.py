"""ViT-S/16 with DINO self-supervised weights, CLS-token features (method.md §7).

Built with timm (``vit_small_patch16_224.dino``), imported only when this backbone is
constructed because importing timm is slow.
"""
from __future__ import annotations

import math

from torch import Tensor

from gcahng.errors import InputError
from gcahng.models.backbone import BACKBONES, Backbone

TIMM_NAME = "vit_small_patch16_224.dino"
PATCH_SIZE = 16


@BACKBONES.register("dino_vits16")
class DinoViTS16(Backbone):
    """timm VisionTransformer under ``.model``: images -> final-norm CLS token (384)."""

    feature_dim = 384
    plain_prefix = "model."
    unused_prefixes = ("model.head.",)
    orthogonal_head = True
    pretrained_source = f"timm {TIMM_NAME} (Hugging Face hub)"

    def __init__(self, image_size: int) -> None:
        super().__init__()
        if image_size % PATCH_SIZE:
            raise InputError(f"dino_vits16 needs an image size divisible by {PATCH_SIZE}, got {image_size}")
        import timm

        self.model = timm.create_model(TIMM_NAME, pretrained=False, num_classes=0, img_size=image_size)

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    @classmethod
    def download_pretrained(cls) -> dict[str, Tensor]:
        import timm

        return timm.create_model(TIMM_NAME, pretrained=True, num_classes=0).state_dict()

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample ``model.pos_embed`` (bicubic, as timm does) when it was saved for another
        image size."""
        key = "model.pos_embed"
        saved = state_dict.get(key)
        if saved is None or saved.shape == self.model.pos_embed.shape or saved.ndim != 3:
            return state_dict
        from timm.layers import resample_abs_pos_embed

        prefix = self.model.num_prefix_tokens
        old_grid = math.isqrt(saved.shape[1] - prefix)
        if old_grid * old_grid != saved.shape[1] - prefix:
            return state_dict  # not a square grid: the shape check reports the mismatch
        new_grid = list(self.model.patch_embed.grid_size)
        resampled = resample_abs_pos_embed(saved, new_grid, [old_grid, old_grid], num_prefix_tokens=prefix)
        return {**state_dict, key: resampled}
