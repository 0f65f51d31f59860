"""Our ResNet/GoogLeNet/ViT backbones against the libraries they mirror, and the pooling."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from gcahng.models import BACKBONES, create_embedding_model
from gcahng.models.backbone import avg_max_pool


def _torchvision_trunk(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision ResNet up to layer4, written out from its documented structure."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def _randomise_bn_statistics(model: torch.nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)


def test_avg_max_pool_matches_adaptive_pools() -> None:
    x = torch.randn(3, 5, 4, 7)
    expected = F.adaptive_avg_pool2d(x, 1).flatten(1) + F.adaptive_max_pool2d(x, 1).flatten(1)
    torch.testing.assert_close(avg_max_pool(x), expected)


@pytest.mark.parametrize(
    ("name", "builder"), [("resnet18", torchvision.models.resnet18), ("resnet50", torchvision.models.resnet50)]
)
def test_resnet_matches_torchvision(name: str, builder) -> None:
    gen = torch.Generator().manual_seed(0)
    reference = builder(weights=None).eval()
    _randomise_bn_statistics(reference, gen)
    tv_state = reference.state_dict()
    backbone = BACKBONES.get(name)(64)
    assert set(backbone.state_dict()) == {f"model.{k}" for k in tv_state if not k.startswith("fc.")}
    # a plain torchvision state dict is renamed onto our backbone (ImageNet classifier dropped)
    model = create_embedding_model(name, 8, pretrained=False)
    converted = {k.removeprefix("backbone."): v for k, v in model.convert_state_dict(tv_state).items()}
    backbone.load_state_dict(converted)
    backbone.eval()
    x = torch.randn(2, 3, 48, 48, generator=gen)
    with torch.no_grad():
        trunk = _torchvision_trunk(reference, x)
        torch.testing.assert_close(backbone.model(x), trunk)
        torch.testing.assert_close(backbone(x), trunk.mean((2, 3)) + trunk.amax((2, 3)))


def test_googlenet_matches_torchvision() -> None:
    gen = torch.Generator().manual_seed(1)
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=False)
    reference.fc = torch.nn.Identity()
    reference.eval()
    _randomise_bn_statistics(reference, gen)
    backbone = BACKBONES.get("googlenet")(224)
    assert set(backbone.state_dict()) == {k for k in reference.state_dict() if not k.startswith("fc.")}
    backbone.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    backbone.eval()
    x = torch.randn(2, 3, 48, 48, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), reference(x))
    assert backbone(x).shape == (2, BACKBONES.get("googlenet").feature_dim)


def test_dino_is_timm_cls_token_with_orthogonal_head_and_resamples_position_embeddings() -> None:
    model = create_embedding_model("dino_vits16", 384, pretrained=False, image_size=32).eval()
    weight = model.fc[1].weight
    torch.testing.assert_close(weight @ weight.T, torch.eye(384), atol=1e-5, rtol=0)
    assert torch.count_nonzero(model.fc[1].bias) == 0
    backbone = model.backbone
    assert backbone.model.global_pool == "token" and backbone.feature_dim == backbone.model.num_features == 384
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), backbone.model.forward_features(x)[:, 0])  # final-norm CLS
    # a 224-pixel state dict (14x14 patches) loads into the 32-pixel network (2x2 patches)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in BACKBONES.get("dino_vits16")(224).model.state_dict().items()}
    full = {k: torch.randn(shape) for k, shape in shapes.items()}
    converted = model.convert_state_dict(full)
    pos = converted["backbone.model.pos_embed"]
    assert pos.shape == (1, 1 + 4, 384)
    torch.testing.assert_close(pos[:, :1], full["pos_embed"][:, :1])  # the CLS position is kept
    grid = full["pos_embed"][:, 1:].reshape(1, 14, 14, 384).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(2, 2), mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(pos[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 4, 384))
    model.load_state_dict(converted | {k: v for k, v in model.state_dict().items() if k.startswith("fc.")})
    torch.testing.assert_close(model.backbone.model.blocks[0].attn.qkv.weight, full["blocks.0.attn.qkv.weight"])


def test_tiny_cnn_is_small_and_keeps_a_4x4_grid_at_any_size() -> None:
    backbone = BACKBONES.get("tiny_cnn")(32).eval()
    assert sum(p.numel() for p in backbone.parameters()) < 100_000
    for size in (8, 32, 48):
        assert backbone(torch.randn(2, 3, size, size)).shape == (2, 1024)
    # where a stroke lies matters: the same blob in two corners gives different features
    left, right = torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)
    left[:, :, 4:10, 4:10], right[:, :, 22:28, 22:28] = 1.0, 1.0
    with torch.no_grad():
        assert not torch.allclose(backbone(left), backbone(right), atol=1e-3)


def test_orthogonal_head_uses_the_backbones_gain() -> None:
    model = create_embedding_model("tiny_cnn", 256, pretrained=False, image_size=32)
    weight = model.fc[1].weight.detach()  # (256, 1024): orthogonal rows scaled by the gain
    gain = BACKBONES.get("tiny_cnn").head_gain
    torch.testing.assert_close(weight @ weight.T, gain**2 * torch.eye(256), atol=1e-5, rtol=0)
    assert torch.count_nonzero(model.fc[1].bias) == 0
