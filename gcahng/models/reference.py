"""Loading the embedding networks of the authors' released GCA-HNG checkpoints.

Full models hold ``feature_extractor.backbone.*`` (ResNet-50 under ``.model.``),
``feature_extractor.fc.0/.1`` (head BatchNorm1d and Linear), ``gnn.*`` and
``softmax_classifier.*``; "metric model" files hold only the ``feature_extractor.*``
entries, with or without that prefix. Any of them may carry DataParallel's ``module.``.
Our networks use the same names below ``feature_extractor.``, so the mapping is a prefix
rename; the GCL and classifier weights are training aids and are not loaded here.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from gcahng.errors import CheckpointError
from gcahng.models.backbone import BACKBONES
from gcahng.models.embedding import EmbeddingModel
from gcahng.models.spec import ModelSpec
from gcahng.models.state_dicts import load_exact, to_model_keys

# the release's test-time geometry (method.md §7): Resize(256) + CenterCrop(224)
RELEASE_IMAGE_SIZE = 224
RELEASE_RESIZE_SIZE = 256
RELEASE_BACKBONES = ("resnet50", "googlenet")


def load_reference_embedding_state_dict(model: EmbeddingModel, state_dict: Mapping[str, Tensor]) -> None:
    """Copy a released model's embedding network (full or metric model) into ``model``.

    A missing or unexpected backbone or head key, or a shape mismatch, raises
    ``CheckpointError`` naming the key.
    """
    what = f"a {model.embedding_dim}-d {model.spec.backbone} embedding network"
    load_exact(model, model.convert_state_dict(state_dict), source="the released checkpoint", what=what)


def reference_model_spec(state_dict: Mapping[str, Tensor]) -> ModelSpec:
    """The spec of the embedding network in a released checkpoint: the registered backbone
    whose parameter names it holds, ``D`` from the head's Linear, the release's 224-pixel
    crop of 256-pixel resized images."""
    head = {k.removeprefix("module."): v for k, v in state_dict.items()}
    head = head.get("feature_extractor.fc.1.weight", head.get("fc.1.weight"))
    if head is None or head.ndim != 2:
        raise CheckpointError("the released checkpoint has no head Linear (feature_extractor.fc.1.weight)")
    # the release's backbones first: trying a backbone means building it on the meta device
    for name in sorted(BACKBONES.names(), key=lambda n: n not in RELEASE_BACKBONES):
        backbone_cls = BACKBONES.get(name)
        keys = to_model_keys(state_dict, backbone_cls)
        with torch.device("meta"):
            names = set(backbone_cls(RELEASE_IMAGE_SIZE).state_dict())
        if {k.removeprefix("backbone.") for k in keys if k.startswith("backbone.")} == names:
            return ModelSpec(
                backbone=name,
                embedding_dim=int(head.shape[0]),
                image_size=RELEASE_IMAGE_SIZE,
                resize_size=RELEASE_RESIZE_SIZE,
            )
    raise CheckpointError(
        "the released checkpoint's backbone matches none of the registered backbones "
        f"({', '.join(BACKBONES.names())})"
    )
