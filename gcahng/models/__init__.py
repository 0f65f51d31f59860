"""Embedding networks (method.md §7): backbones chosen by name, the BN1d -> Linear head,
pretrained weights, BN and warm-up freezing, and the released checkpoints' mapping.

Importing this package does not import torchvision or timm (timm is imported when the
``dino_vits16`` or ``efficientnet_lite0`` backbone is built), so inference start-up stays fast.
"""
from gcahng.models import efficientnet_lite, googlenet, resnet, tiny_cnn, vit  # noqa: F401  (register the backbones)
from gcahng.models.backbone import BACKBONES, Backbone
from gcahng.models.embedding import EmbeddingModel, create_embedding_model, load_embedding_model
from gcahng.models.pretrained import fetch_pretrained
from gcahng.models.reference import load_reference_embedding_state_dict, reference_model_spec
from gcahng.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from gcahng.models.state_dicts import read_weights_file

__all__ = [
    "BACKBONES",
    "Backbone",
    "EmbeddingModel",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelSpec",
    "create_embedding_model",
    "fetch_pretrained",
    "load_embedding_model",
    "load_reference_embedding_state_dict",
    "read_weights_file",
    "reference_model_spec",
]
