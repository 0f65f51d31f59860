"""Loading the embedding networks of the authors' released GCA-HNG checkpoints.

Full models hold ``feature_extractor.backbone.*`` (ResNet-50 under ``.model.``),
``feature_extractor.fc.0/.1`` (head BatchNorm1d and Linear), ``gnn.*`` and
``softmax_classifier.*``; "metric model" files hold only the ``feature_extractor.*``
entries, with or without that prefix. Any of them may carry DataParallel's ``module.``.
Our networks use the same names below ``feature_extractor.``, so the mapping is a prefix
rename; the GCL and classifier weights are training aids and are not loaded here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gcahng.errors import CheckpointError
from gcahng.models.backbone import BACKBONES
from gcahng.models.embedding import EmbeddingModel
from gcahng.models.spec import ModelSpec
from gcahng.models.state_dicts import extract_state_dict, load_exact, to_model_keys

# the release's test-time geometry (method.md §7): Resize(256) + CenterCrop(224)
RELEASE_IMAGE_SIZE = 224
RELEASE_RESIZE_SIZE = 256
RELEASE_BACKBONES = ("resnet50", "googlenet")
SOURCE = "the released checkpoint"


def load_reference_embedding_state_dict(model: EmbeddingModel, state_dict: Mapping[str, Any]) -> None:
    """Copy a released model's embedding network (full or metric model; the state dict itself
    or a dict holding it under ``"model"`` or ``"state_dict"``) into ``model``.

    A missing or unexpected backbone or head key, or a shape mismatch, raises
    ``CheckpointError`` naming the key.
    """
    state_dict = extract_state_dict(state_dict, source=SOURCE)
    what = f"a {model.embedding_dim}-d {model.spec.backbone} embedding network"
    load_exact(model, model.convert_state_dict(state_dict), source=SOURCE, what=what)


def reference_model_spec(state_dict: Mapping[str, Any]) -> ModelSpec:
    """The spec of the embedding network in a released checkpoint: the registered backbone
    whose parameter names it holds, ``D`` from the head's Linear, the release's 224-pixel
    crop of 256-pixel resized images."""
    state_dict = extract_state_dict(state_dict, source=SOURCE)
    entries = {k.removeprefix("module."): v for k, v in state_dict.items()}
    head = entries.get("feature_extractor.fc.1.weight", entries.get("fc.1.weight"))
    if head is None or head.ndim != 2:
        raise CheckpointError(f"{SOURCE} has no head Linear (feature_extractor.fc.1.weight)")
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
        f"{SOURCE}'s backbone matches none of the registered backbones "
        f"({', '.join(BACKBONES.names())})"
    )
