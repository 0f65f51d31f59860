"""The authors' released checkpoints onto our embedding networks.

State dicts are made from the release's parameter list (tests/assets/official_checkpoint_keys,
copied from the specification) with random values of the listed shapes and dtypes.
"""
from __future__ import annotations

import pytest
import torch
from release_keys import release_state_dict

from gcahng.errors import CheckpointError
from gcahng.models import (
    create_embedding_model,
    load_embedding_model,
    load_reference_embedding_state_dict,
    reference_model_spec,
)

CASES = [("resnet50_K2.tsv", "resnet50"), ("resnet50_K1.tsv", "resnet50"), ("googlenet_K2.tsv", "googlenet")]




def _metric_model(full: dict[str, torch.Tensor], *, prefix: str = "feature_extractor.") -> dict[str, torch.Tensor]:
    return {
        prefix + k.removeprefix("feature_extractor."): v for k, v in full.items() if k.startswith("feature_extractor.")
    }


@pytest.mark.parametrize(("file", "backbone"), CASES)
def test_release_maps_by_prefix_rename_and_evaluates(file: str, backbone: str) -> None:
    full = release_state_dict(file)
    model = create_embedding_model(backbone, 512, pretrained=False)
    load_reference_embedding_state_dict(model, full)
    ours = model.state_dict()
    unused = ("backbone.model.fc.", "backbone.fc.", "backbone.aux1.", "backbone.aux2.")
    release = {k.removeprefix("feature_extractor."): v for k, v in full.items() if k.startswith("feature_extractor.")}
    assert {k for k in release if not k.startswith(unused)} == set(ours)
    for key, value in ours.items():
        assert torch.equal(value, release[key]), key
    # evaluation: BN running statistics and head as released, by hand
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.backbone(x)
        bn = (features - release["fc.0.running_mean"]) / torch.sqrt(release["fc.0.running_var"] + 1e-5)
        bn = bn * release["fc.0.weight"] + release["fc.0.bias"]
        expected = bn @ release["fc.1.weight"].T + release["fc.1.bias"]
        out = model(x)
    assert out.shape == (2, 512) and torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "variant",
    [
        lambda full: _metric_model(full),
        lambda full: _metric_model(full, prefix=""),
        lambda full: {f"module.{k}": v for k, v in full.items()},
        lambda full: _metric_model(full, prefix="module."),
    ],
    ids=["metric-model", "metric-model-no-prefix", "dataparallel-full", "dataparallel-metric-no-prefix"],
)
def test_release_variants_load_the_same_weights(variant) -> None:
    full = release_state_dict("googlenet_K2.tsv", seed=3)
    model = create_embedding_model("googlenet", 512, pretrained=False)
    load_reference_embedding_state_dict(model, variant(full))
    for key, value in model.state_dict().items():
        assert torch.equal(value, full[f"feature_extractor.{key}"]), key


def test_release_mismatches_name_the_key() -> None:
    full = release_state_dict("resnet50_K2.tsv")
    model = create_embedding_model("resnet50", 512, pretrained=False)
    missing = {k: v for k, v in full.items() if k != "feature_extractor.backbone.model.layer3.2.bn2.running_mean"}
    with pytest.raises(CheckpointError, match=r"1 missing: backbone\.model\.layer3\.2\.bn2\.running_mean"):
        load_reference_embedding_state_dict(model, missing)
    extra = {**full, "feature_extractor.backbone.model.layer5.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"unexpected: backbone\.model\.layer5\.weight"):
        load_reference_embedding_state_dict(model, extra)
    with pytest.raises(
        CheckpointError, match=r"shape mismatch: fc\.1\.weight \(file \(512, 2048\), model \(128, 2048\)\)"
    ):
        load_reference_embedding_state_dict(create_embedding_model("resnet50", 128, pretrained=False), full)
    with pytest.raises(CheckpointError, match=r"googlenet backbone|googlenet embedding network"):
        load_reference_embedding_state_dict(create_embedding_model("googlenet", 512, pretrained=False), full)


@pytest.mark.parametrize(("file", "backbone"), CASES)
def test_reference_spec_is_recognised_and_rebuilds_the_model(file: str, backbone: str) -> None:
    full = release_state_dict(file, seed=5)
    spec = reference_model_spec(full)
    assert (spec.backbone, spec.embedding_dim, spec.image_size, spec.resize_size) == (backbone, 512, 224, 256)
    assert reference_model_spec(_metric_model(full, prefix="")) == spec
    model = load_embedding_model(spec, full)
    torch.testing.assert_close(model.fc[1].weight, full["feature_extractor.fc.1.weight"])
    with pytest.raises(CheckpointError, match="no head Linear"):
        reference_model_spec({k: v for k, v in full.items() if "fc.1.weight" not in k or "backbone" in k})


def test_wrapped_release_files_are_unwrapped() -> None:
    full = release_state_dict("resnet50_K1.tsv", seed=7)
    assert reference_model_spec({"state_dict": full}).backbone == "resnet50"
    model = create_embedding_model("resnet50", 512, pretrained=False)
    load_reference_embedding_state_dict(model, {"state_dict": full})
    torch.testing.assert_close(model.fc[0].running_var, full["feature_extractor.fc.0.running_var"])
    with pytest.raises(CheckpointError, match="entry 'epoch' is not a tensor"):
        load_reference_embedding_state_dict(model, {**full, "epoch": 3})
