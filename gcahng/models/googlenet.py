"""GoogLeNet (Inception v1) backbone with global average pooling (method.md §7).

Mirrors torchvision's GoogLeNet (including its 3x3 convolution in the "5x5" branch and
``transform_input``), without the auxiliary heads and the classifier, with the same
parameter names, so torchvision's ImageNet weights and the reference release (which keeps
the network directly under ``backbone.``) load unchanged. Written out rather than
imported to keep ``import torchvision`` (about a second) off the retrieval path; the tests
check it against torchvision numerically.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from gcahng.models.backbone import BACKBONES, Backbone, conv_layers_to_initialise, load_torch_hub_state_dict
from gcahng.models.spec import IMAGENET_MEAN, IMAGENET_STD


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3), ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu_(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels."""

    def __init__(self, in_ch: int, ch1: int, ch3_red: int, ch3: int, ch5_red: int, ch5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_ch, ch1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_ch, ch3_red, 1), BasicConv2d(ch3_red, ch3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_ch, ch5_red, 1), BasicConv2d(ch5_red, ch5, 3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_ch, pool_proj, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


@BACKBONES.register("googlenet")
class GoogLeNet(Backbone):
    """Inception v1, 1024 pooled features; torchvision's IMAGENET1K_V1 weights.

    Inputs are normalised with the ImageNet mean and std like every backbone here; they
    are re-normalised to the ``(x - 0.5) / 0.5`` scale the ImageNet weights were trained
    with (torchvision's ``transform_input=True``).
    """

    feature_dim = 1024
    unused_prefixes = ("fc.", "aux1.", "aux2.")
    pretrained_source = "torchvision GoogLeNet_Weights.IMAGENET1K_V1"
    weights_url = "https://download.pytorch.org/models/googlenet-1378be20.pth"

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        for module in conv_layers_to_initialise(self):
            # torchvision truncates at +-2, i.e. 200 standard deviations: a plain normal
            nn.init.normal_(module.weight, mean=0.0, std=0.01)

    def forward(self, images: Tensor) -> Tensor:
        # ImageNet-normalised -> (x - 0.5) / 0.5, i.e. x * std / 0.5 + (mean - 0.5) / 0.5
        scale = images.new_tensor([s / 0.5 for s in IMAGENET_STD]).view(1, 3, 1, 1)
        shift = images.new_tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN]).view(1, 3, 1, 1)
        x = images * scale + shift
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for stage in (self.inception4a, self.inception4b, self.inception4c, self.inception4d, self.inception4e):
            x = stage(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return x.mean(dim=(2, 3))

    @classmethod
    def download_pretrained(cls) -> dict[str, Tensor]:
        return load_torch_hub_state_dict(cls.weights_url)
