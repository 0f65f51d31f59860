"""EmbeddingModel: shapes, head, parameter groups, BN and warm-up freezing, spec, rebuilding."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from gcahng.errors import CheckpointError, InputError
from gcahng.models import BACKBONES, EmbeddingModel, ModelSpec, create_embedding_model, load_embedding_model
from gcahng.models.backbone import Backbone


def _tiny(dim: int = 16) -> EmbeddingModel:
    return create_embedding_model("tiny_cnn", dim, pretrained=False, image_size=32)


def test_registry_lists_the_backbones_of_the_method() -> None:
    assert set(BACKBONES.names()) >= {"resnet50", "googlenet", "dino_vits16", "resnet18", "tiny_cnn"}
    with pytest.raises(InputError, match="resnet50"):
        create_embedding_model("resnet51", 8, pretrained=False)


@pytest.mark.parametrize(
    ("name", "features"), [("resnet50", 2048), ("googlenet", 1024), ("resnet18", 512), ("tiny_cnn", 1024)]
)
def test_cnn_models_embed_without_normalising(name: str, features: int) -> None:
    model = create_embedding_model(name, 24, pretrained=False, image_size=32).eval()
    assert isinstance(model.fc[0], nn.BatchNorm1d) and model.fc[0].affine and model.fc[0].num_features == features
    assert isinstance(model.fc[1], nn.Linear) and (model.fc[1].in_features, model.fc[1].out_features) == (features, 24)
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        z = model(x)
        assert z.shape == (2, 24) and model.embedding_dim == 24
        torch.testing.assert_close(z, model.fc(model.backbone(x)))
    assert not torch.allclose(z.norm(dim=1), torch.ones(2))


def test_parameter_groups_partition_the_model() -> None:
    model = _tiny()
    backbone, head = list(model.backbone_parameters()), list(model.head_parameters())
    ids = [id(p) for p in backbone + head]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in head} == {id(p) for p in model.fc.parameters()}


def test_frozen_backbone_bn_keeps_statistics_across_train_calls() -> None:
    model = _tiny()
    assert model.freeze_backbone_bn() == 3
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(not bn.training for bn in bns) and model.fc[0].training and model.training
    before = [bn.running_mean.clone() for bn in bns]
    head_before = model.fc[0].running_mean.clone()
    model(torch.randn(8, 3, 32, 32) * 3 + 1).sum().backward()
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns, strict=False))
    assert not torch.equal(head_before, model.fc[0].running_mean)  # the head's BN1d still updates
    assert all(bn.weight.grad is not None for bn in bns)  # affine parameters still train
    model.eval().train()
    assert all(not bn.training for bn in bns)
    model.freeze_backbone_bn(False)
    assert all(bn.training for bn in bns)
    model(torch.randn(8, 3, 32, 32) + 1)
    assert not torch.equal(before[0], bns[0].running_mean)


def test_warmup_freeze_stops_backbone_gradients_only() -> None:
    model = _tiny()
    model.set_backbone_trainable(False)
    model(torch.randn(4, 3, 32, 32)).pow(2).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone_parameters())
    assert all(p.grad is not None for p in model.head_parameters())
    model.set_backbone_trainable(True)
    model(torch.randn(4, 3, 32, 32)).pow(2).sum().backward()
    assert all(p.grad is not None for p in model.backbone_parameters())


def test_bad_images_are_rejected_with_their_shape() -> None:
    with pytest.raises(InputError, match=r"\(2, 1, 32, 32\)"):
        _tiny()(torch.randn(2, 1, 32, 32))


def test_spec_round_trips_and_rejects_bad_values() -> None:
    model = create_embedding_model("resnet18", 32, pretrained=False, image_size=64, resize_size=73)
    spec = model.spec
    assert (spec.backbone, spec.embedding_dim, spec.image_size, spec.resize_size) == ("resnet18", 32, 64, 73)
    data = spec.to_dict()
    assert all(isinstance(v, (str, int, list, type(None))) for v in data.values())
    assert ModelSpec.from_dict(data) == spec
    with pytest.raises(InputError, match="colour"):
        ModelSpec.from_dict({**data, "colour": 1})
    with pytest.raises(InputError, match="embedding_dim"):
        ModelSpec.from_dict({"backbone": "resnet18"})
    with pytest.raises(InputError, match="embedding_dim"):
        ModelSpec("resnet18", 0)
    with pytest.raises(InputError, match="resize_size"):
        ModelSpec("resnet18", 8, image_size=64, resize_size=32)
    with pytest.raises(InputError, match="divisible by 16"):
        create_embedding_model("dino_vits16", 384, pretrained=False, image_size=40)


@pytest.mark.parametrize("name", ["tiny_cnn", "googlenet"])
def test_load_embedding_model_rebuilds_the_same_network(name: str) -> None:
    model = create_embedding_model(name, 12, pretrained=False, image_size=32)
    model(torch.randn(6, 3, 32, 32))  # move the BN statistics away from their defaults
    model.eval()
    state = model.state_dict()
    rebuilt = load_embedding_model(model.spec.to_dict(), state)
    assert not rebuilt.training and rebuilt.spec == model.spec
    assert all(not t.is_meta for t in rebuilt.state_dict().values())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    # the rebuilt network owns its tensors: training it leaves the source state dict alone
    before = state["backbone." + next(iter(model.backbone.state_dict()))].clone()
    with torch.no_grad():
        next(rebuilt.backbone.parameters()).add_(1.0)
    assert torch.equal(state["backbone." + next(iter(model.backbone.state_dict()))], before)
    # DataParallel-saved keys work too
    load_embedding_model(model.spec, {f"module.{k}": v for k, v in state.items()})


def test_load_embedding_model_names_mismatching_keys() -> None:
    model = _tiny(12)
    state = model.state_dict()
    with pytest.raises(CheckpointError, match=r"missing: fc\.1\.bias"):
        load_embedding_model(model.spec, {k: v for k, v in state.items() if k != "fc.1.bias"})
    with pytest.raises(
        CheckpointError, match=r"shape mismatch: fc\.1\.weight \(file \(13, 1024\), model \(12, 1024\)\)"
    ):
        load_embedding_model(model.spec, {**state, "fc.1.weight": torch.zeros(13, 1024)})
    with pytest.raises(CheckpointError, match=r"unexpected: backbone\.extra"):
        load_embedding_model(model.spec, {**state, "backbone.extra": torch.zeros(1)})


def test_inference_build_imports_no_heavy_modules() -> None:
    """``gcahng retrieve`` must start fast: rebuilding a CNN from a state dict imports neither
    torchvision, timm nor torch._dynamo (each about a second)."""
    code = (
        "import sys\n"
        "from gcahng.models import create_embedding_model, load_embedding_model\n"
        "m = create_embedding_model('resnet18', 8, pretrained=False)\n"
        "load_embedding_model(m.spec, m.state_dict())\n"
        "heavy = [n for n in ('torchvision', 'timm', 'torch._dynamo', 'torch_geometric', 'sklearn', 'matplotlib')\n"
        "         if n in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


class _Pixels(Backbone):
    """A backbone without weights: the image pooled to 4x4, flattened (48 features)."""

    feature_dim = 48

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(images).flatten(1)


def test_a_backbone_without_weights_round_trips() -> None:
    with BACKBONES.registered("pixels_for_test", _Pixels):
        model = create_embedding_model("pixels_for_test", 8, pretrained=False, image_size=16).eval()
        state = model.state_dict()
        assert all(k.startswith("fc.") for k in state)  # only the head has weights
        loaded = load_embedding_model(model.spec, state).eval()
    images = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))
