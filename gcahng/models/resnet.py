"""ResNet-18 and ResNet-50 backbones with average + max pooling (method.md §7).

The layers mirror torchvision's ResNet (v1.5: stride on the 3x3 convolution) with the
same parameter names, so torchvision's ImageNet weights and the reference release load by
a prefix rename (the network sits under ``.model``, as in the release). It is written out
here rather than imported because ``import torchvision`` costs about a second, which the
retrieval command cannot afford; the tests check it against torchvision numerically.
"""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from gcahng.models.backbone import (
    BACKBONES,
    Backbone,
    avg_max_pool,
    conv_layers_to_initialise,
    load_torch_hub_state_dict,
)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)
    return conv, nn.BatchNorm2d(out_ch)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion: ClassVar[int] = 1

    def __init__(self, in_ch: int, width: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_ch, width, 3, stride)
        self.conv2, self.bn2 = _conv_bn(width, width, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand, with a residual connection (ResNet-50+)."""

    expansion: ClassVar[int] = 4

    def __init__(self, in_ch: int, width: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_ch, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, width * self.expansion, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetTrunk(nn.Module):
    """Stem and the four stages of a ResNet: ``(B, 3, H, W) -> (B, C, H/32, W/32)``."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = 64
        self.layer1 = self._stage(block, 64, depths[0], stride=1)
        self.layer2 = self._stage(block, 128, depths[1], stride=2)
        self.layer3 = self._stage(block, 256, depths[2], stride=2)
        self.layer4 = self._stage(block, 512, depths[3], stride=2)
        for module in conv_layers_to_initialise(self):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _stage(self, block: type[BasicBlock] | type[Bottleneck], width: int, depth: int, stride: int) -> nn.Sequential:
        out_ch = width * block.expansion
        downsample = None
        if stride != 1 or self.out_channels != out_ch:
            downsample = nn.Sequential(*_conv_bn(self.out_channels, out_ch, 1, stride))
        blocks = [block(self.out_channels, width, stride, downsample)]
        blocks += [block(out_ch, width, 1, None) for _ in range(depth - 1)]
        self.out_channels = out_ch
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class _ResNetBackbone(Backbone):
    """A ResNet trunk under ``.model``, pooled by global average + global max (summed)."""

    plain_prefix = "model."
    unused_prefixes = ("model.fc.",)
    block: ClassVar[type[BasicBlock] | type[Bottleneck]]
    depths: ClassVar[tuple[int, int, int, int]]
    weights_url: ClassVar[str]

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.model = ResNetTrunk(self.block, self.depths)

    def forward(self, images: Tensor) -> Tensor:
        return avg_max_pool(self.model(images))

    @classmethod
    def download_pretrained(cls) -> dict[str, Tensor]:
        return load_torch_hub_state_dict(cls.weights_url)


@BACKBONES.register("resnet50")
class ResNet50(_ResNetBackbone):
    """ResNet-50, 2048 pooled features; torchvision's IMAGENET1K_V1 weights."""

    feature_dim = 2048
    block = Bottleneck
    depths = (3, 4, 6, 3)
    weights_url = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    pretrained_source = "torchvision ResNet50_Weights.IMAGENET1K_V1"


@BACKBONES.register("resnet18")
class ResNet18(_ResNetBackbone):
    """ResNet-18, 512 pooled features; torchvision's IMAGENET1K_V1 weights."""

    feature_dim = 512
    block = BasicBlock
    depths = (2, 2, 2, 2)
    weights_url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    pretrained_source = "torchvision ResNet18_Weights.IMAGENET1K_V1"
