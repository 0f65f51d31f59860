"""A small convolutional backbone for 32x32 digit-like images that trains in seconds on a CPU."""
from __future__ import annotations

from torch import Tensor, nn

from gcahng.models.backbone import BACKBONES, Backbone, avg_max_pool, conv_layers_to_initialise


def _block(in_ch: int, out_ch: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]
    return layers + [nn.MaxPool2d(2)] if pool else layers


@BACKBONES.register("tiny_cnn")
class TinyCNN(Backbone):
    """Four conv-BN-ReLU blocks (32, 64, 128, 128 channels; 2x2 max pool after the first
    three), then global average + max pooling: 128 features. About 0.24 M parameters and
    13 M multiply-adds per 32x32 image. No pretrained weights."""

    feature_dim = 128

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(3, 32, pool=True),
            *_block(32, 64, pool=True),
            *_block(64, 128, pool=True),
            *_block(128, 128, pool=False),
        )
        for module in conv_layers_to_initialise(self):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: Tensor) -> Tensor:
        return avg_max_pool(self.features(images))
