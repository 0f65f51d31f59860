"""The embedding network: backbone, then the head BatchNorm1d -> Linear (method.md §7)."""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from gcahng.errors import InputError
from gcahng.models.backbone import BACKBONES, Backbone
from gcahng.models.pretrained import fetch_pretrained
from gcahng.models.spec import ModelSpec
from gcahng.models.state_dicts import load_exact, read_weights_file, to_model_keys

_FROZEN_BN_TYPES = (nn.BatchNorm2d, nn.SyncBatchNorm)


class EmbeddingModel(nn.Module):
    """Images ``(B, 3, H, W)``, normalised with ``spec.mean``/``spec.std`` -> embeddings
    ``(B, D)``, not L2-normalised.

    ``backbone`` pools features ``(B, F)``; ``fc`` is ``Sequential(BatchNorm1d(F),
    Linear(F, D))``, named as in the reference release (``fc.0``, ``fc.1``).
    """

    def __init__(self, backbone: Backbone, spec: ModelSpec) -> None:
        super().__init__()
        features = type(backbone).feature_dim
        self.spec = spec
        self.embedding_dim = spec.embedding_dim
        self.backbone = backbone
        self.fc = nn.Sequential(nn.BatchNorm1d(features), nn.Linear(features, spec.embedding_dim))
        if type(backbone).orthogonal_head:
            nn.init.orthogonal_(self.fc[1].weight, gain=type(backbone).head_gain)
            nn.init.zeros_(self.fc[1].bias)
        self._backbone_bn_frozen = False

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        return self.fc(self.backbone(images))

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the backbone (trained with ``base_lr``)."""
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the head (trained with ``base_lr * embedding_lr_ratio``)."""
        return self.fc.parameters()

    def freeze_backbone_bn(self, frozen: bool = True) -> int:
        """Keep the backbone's BatchNorm2d layers in eval mode (running statistics frozen;
        their affine parameters still train), also across later ``.train()`` calls.
        ``frozen=False`` undoes it. Returns the number of layers affected."""
        self._backbone_bn_frozen = frozen
        layers = [m for m in self.backbone.modules() if isinstance(m, _FROZEN_BN_TYPES)]
        for layer in layers:
            layer.train(self.training and not frozen)
        return len(layers)

    def set_backbone_trainable(self, trainable: bool) -> None:
        """Warm-up freeze: ``requires_grad`` of every backbone parameter."""
        for param in self.backbone.parameters():
            param.requires_grad_(trainable)

    def train(self, mode: bool = True) -> EmbeddingModel:
        super().train(mode)
        if self._backbone_bn_frozen:
            for layer in self.backbone.modules():
                if isinstance(layer, _FROZEN_BN_TYPES):
                    layer.eval()
        return self

    def convert_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``state_dict`` in any layout ``gcahng.models.state_dicts.to_model_keys`` understands,
        renamed to this model's keys and adapted to its geometry (nothing is checked yet)."""
        keys = to_model_keys(state_dict, type(self.backbone))
        backbone = self.backbone.adapt_state_dict(
            {k.removeprefix("backbone."): v for k, v in keys.items() if k.startswith("backbone.")}
        )
        rest = {k: v for k, v in keys.items() if not k.startswith("backbone.")}
        return {**{f"backbone.{k}": v for k, v in backbone.items()}, **rest}

    def extra_repr(self) -> str:
        return f"spec={self.spec}"


def _build(spec: ModelSpec, *, initialise: bool) -> EmbeddingModel:
    """The network of ``spec``; with ``initialise=False`` the backbone lives on the meta
    device (no memory, no random initialisation) until a state dict is loaded."""
    backbone_cls = BACKBONES.get(spec.backbone)
    if initialise:
        backbone = backbone_cls(spec.image_size)
    else:
        with torch.device("meta"):
            backbone = backbone_cls(spec.image_size)
    return EmbeddingModel(backbone, spec)


def _load_backbone(model: EmbeddingModel, state_dict: Mapping[str, Tensor], *, source: str) -> None:
    """Backbone weights from ``state_dict`` (any layout of ``to_model_keys``; must be
    complete); its head too when it holds one of the same shape."""
    keys = model.convert_state_dict(state_dict)
    backbone_state = {k.removeprefix("backbone."): v for k, v in keys.items() if k.startswith("backbone.")}
    load_exact(model.backbone, backbone_state, source=source, what=f"the {model.spec.backbone} backbone")
    head_state = {k.removeprefix("fc."): v for k, v in keys.items() if k.startswith("fc.")}
    if not head_state:
        return
    expected = model.fc.state_dict()
    if head_state.keys() == expected.keys() and all(head_state[k].shape == expected[k].shape for k in expected):
        load_exact(model.fc, head_state, source=source, what="the head")
    else:
        warnings.warn(
            f"{source}: its head does not fit a {model.embedding_dim}-d {model.spec.backbone} head; "
            "the head starts from random initialisation",
            stacklevel=3,
        )


def create_embedding_model(
    backbone: str,
    embedding_dim: int,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    image_size: int = 224,
    resize_size: int | None = None,
) -> EmbeddingModel:
    """An embedding network for training or evaluation.

    Backbone weights, in order of precedence: ``weights`` (a local file: torchvision/timm
    backbone state dict, one of our checkpoints, or a released GCA-HNG model; a matching
    head is loaded too), else the standard pretrained weights when ``pretrained`` (from the
    framework's cache or downloaded; ``OfflineError`` when neither works), else random
    initialisation (never touches the network). The head is freshly initialised.
    """
    backbone_cls = BACKBONES.get(backbone)
    spec = ModelSpec(
        backbone=backbone, embedding_dim=embedding_dim, image_size=image_size, resize_size=resize_size,
        mean=backbone_cls.input_mean, std=backbone_cls.input_std,
    )
    if weights is not None:
        state_dict, source = read_weights_file(weights), f"weights file {str(weights)!r}"
    elif pretrained:
        state_dict, source = fetch_pretrained(backbone), f"pretrained weights ({backbone_cls.pretrained_source})"
    else:
        return _build(spec, initialise=True)
    model = _build(spec, initialise=False)
    _load_backbone(model, state_dict, source=source)
    return model


def load_embedding_model(
    spec: ModelSpec | Mapping[str, object], state_dict: Mapping[str, Tensor], *, source: str = "the checkpoint"
) -> EmbeddingModel:
    """The trained network of ``spec`` with all weights from ``state_dict`` (ours or a
    released model's, see ``to_model_keys``), built without random initialisation; a key
    or shape mismatch raises ``CheckpointError``. Returned in eval mode."""
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.from_dict(spec)
    model = _build(spec, initialise=False)
    what = f"a {spec.embedding_dim}-d {spec.backbone} embedding network"
    load_exact(model, model.convert_state_dict(state_dict), source=source, what=what)
    return model.eval()
