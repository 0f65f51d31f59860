"""Pretrained weights: the framework caches, local weight files, and clear offline errors.

No test reaches the network: sockets are blocked, and downloads are replaced by failures.
"""
from __future__ import annotations

import socket
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from gcahng.errors import CheckpointError, InputError, OfflineError
from gcahng.models import create_embedding_model


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise RuntimeError("test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def failing_torch_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub cache whose downloads fail as they do offline; returns its folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def fail(url: str, *args, **kwargs) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _assert_states_equal(model_state: dict, expected: dict) -> None:
    assert model_state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(model_state[key], value), key


def test_offline_torchvision_weights_name_the_options(failing_torch_hub: Path) -> None:
    with pytest.raises(OfflineError) as info:
        create_embedding_model("resnet18", 8)
    message = str(info.value)
    assert "--weights PATH" in message and "--no-pretrained" in message
    assert "resnet18" in message and "name resolution" in message


def test_offline_timm_weights_name_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError
    from timm.models import _hub

    def fail(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot reach huggingface.co and the file is not cached")

    monkeypatch.setattr(_hub, "hf_hub_download", fail)
    with pytest.raises(OfflineError, match=r"dino_vits16.*not cached.*--weights PATH.*--no-pretrained"):
        create_embedding_model("dino_vits16", 384, image_size=32)


def test_cached_torchvision_weights_need_no_network(failing_torch_hub: Path) -> None:
    weights = torchvision.models.resnet18(weights=None).state_dict()
    failing_torch_hub.mkdir(parents=True)
    torch.save(weights, failing_torch_hub / "resnet18-f37072fd.pth")
    model = create_embedding_model("resnet18", 8)
    expected = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    _assert_states_equal({k.removeprefix("model."): v for k, v in model.backbone.state_dict().items()}, expected)


def test_random_init_and_weight_files_never_download(failing_torch_hub: Path, tmp_path: Path) -> None:
    model = create_embedding_model("resnet18", 8, pretrained=False)
    path = tmp_path / "backbone.pt"
    torch.save(model.backbone.model.state_dict(), path)  # plain torchvision layout
    loaded = create_embedding_model("resnet18", 8, pretrained=True, weights=path)
    _assert_states_equal(loaded.backbone.state_dict(), model.backbone.state_dict())


def test_tiny_cnn_has_no_pretrained_weights() -> None:
    with pytest.raises(InputError, match="--no-pretrained"):
        create_embedding_model("tiny_cnn", 8, image_size=32)


def test_torchvision_googlenet_file_with_auxiliary_heads_loads(tmp_path: Path) -> None:
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "googlenet.pth"
    torch.save(reference.state_dict(), path)
    model = create_embedding_model("googlenet", 16, weights=path)
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith(("fc.", "aux1.", "aux2."))}
    _assert_states_equal(model.backbone.state_dict(), expected)


def test_our_checkpoint_loads_backbone_and_fitting_head(tmp_path: Path) -> None:
    source = create_embedding_model("tiny_cnn", 16, pretrained=False, image_size=32)
    path = tmp_path / "last.pt"
    torch.save(
        {"format": "gcahng-checkpoint", "model_spec": source.spec.to_dict(), "model": source.state_dict(), "epoch": 3},
        path,
    )
    same = create_embedding_model("tiny_cnn", 16, weights=path, image_size=32)
    _assert_states_equal(same.state_dict(), source.state_dict())
    with pytest.warns(UserWarning, match="head starts from random initialisation"):
        other = create_embedding_model("tiny_cnn", 8, weights=path, image_size=32)
    _assert_states_equal(other.backbone.state_dict(), source.backbone.state_dict())


def test_safetensors_weights_load(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = create_embedding_model("tiny_cnn", 16, pretrained=False, image_size=32)
    path = tmp_path / "model.safetensors"
    save_file(source.state_dict(), str(path))
    loaded = create_embedding_model("tiny_cnn", 16, weights=path, image_size=32)
    _assert_states_equal(loaded.state_dict(), source.state_dict())


def test_bad_weight_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nowhere.pt.*does not exist"):
        create_embedding_model("tiny_cnn", 8, weights=tmp_path / "nowhere.pt", image_size=32)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="cannot read weights file.*corrupt.pt"):
        create_embedding_model("tiny_cnn", 8, weights=corrupt, image_size=32)
    not_tensors = tmp_path / "settings.pt"
    torch.save({"lr": 0.1, "epochs": 3}, not_tensors)
    with pytest.raises(CheckpointError, match="settings.pt is not a state dict: entry 'lr'"):
        create_embedding_model("tiny_cnn", 8, weights=not_tensors, image_size=32)
    wrong = tmp_path / "resnet18.pt"
    torch.save(create_embedding_model("resnet18", 8, pretrained=False).state_dict(), wrong)
    with pytest.raises(
        CheckpointError, match=r"resnet18.pt.*does not match the resnet50 backbone.*layer1\.0\.conv3\.weight"
    ):
        create_embedding_model("resnet50", 8, weights=wrong)
