"""The typed training config: presets, YAML loading, overrides and their errors."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import torch

from gcahng.config import (
    FIELD_NAMES,
    PRESETS_DIR,
    TrainConfig,
    apply_overrides,
    load_config,
    parse_assignments,
    preset_names,
    preset_path,
    save_config,
)
from gcahng.errors import ConfigError
from gcahng.training.build import build_model, build_training_parts

REFERENCE = [
    f"{d}_{b}" for d in ("cub200", "cars196", "sop", "inshop") for b in ("googlenet", "resnet50", "dino_vits16")
]


def test_the_twelve_reference_presets_and_digits_ship_with_the_package() -> None:
    assert sorted(preset_names()) == sorted(REFERENCE + ["digits"])
    top_level = Path(__file__).parent.parent / "configs"
    assert sorted(p.name for p in top_level.glob("*.yaml")) == sorted(p.name for p in PRESETS_DIR.glob("*.yaml"))


@functools.cache
def _model(backbone: str, dim: int, image_size: int):
    cfg = TrainConfig(backbone=backbone, embedding_dim=dim, image_size=image_size, pretrained=False)
    return build_model(cfg)


@pytest.mark.parametrize("name", REFERENCE + ["digits"])
def test_every_preset_loads_and_builds_its_training_parts(name: str) -> None:
    cfg = load_config(PRESETS_DIR / f"{name}.yaml", {"pretrained": False, "device": "cpu"})
    dataset, _, backbone = name.partition("_")
    assert cfg.dataset == dataset
    if name != "digits":
        assert cfg.backbone == backbone
        assert cfg.selection == "test" and cfg.selection_metric == "recall@1"  # reproduces the release
        assert (cfg.classes_per_batch, cfg.per_class) in {(27, 3), (40, 2)}
        assert cfg.gcl_iterations == (2 if dataset in ("cub200", "cars196") else 1)
    model = _model(cfg.backbone, cfg.embedding_dim, cfg.image_size)
    parts = build_training_parts(cfg, num_classes=7, device=torch.device("cpu"), model=model)
    assert parts.model.embedding_dim == cfg.embedding_dim
    assert len(parts.generator.gcl.layers) == cfg.gcl_iterations
    assert parts.generator.classifier.out_features == 7
    groups = {g["name"]: g["lr"] for g in parts.optimizers.embedding.param_groups}
    assert groups["backbone"] == pytest.approx(cfg.base_lr)
    assert parts.optimizers.gcl.param_groups[0]["lr"] == pytest.approx(cfg.gnn_lr)


def test_preset_lookup_by_dataset_and_backbone() -> None:
    assert preset_path("cub200").name == "cub200_resnet50.yaml"
    assert preset_path("sop", "googlenet").name == "sop_googlenet.yaml"
    assert preset_path("digits").name == "digits.yaml"
    assert preset_path("folder") is None


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cfg = load_config(PRESETS_DIR / "digits.yaml", {"plugins": ["json"], "crop_scale": [0.5, 0.9]})
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert set(cfg.to_dict()) == set(FIELD_NAMES)


def test_yaml_exponent_numbers_and_assignments_are_read_as_numbers(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("base_lr: 1e-4\nepochs: 3\n")
    assert load_config(tmp_path / "c.yaml").base_lr == 1e-4
    parsed = parse_assignments(["alpha=4", "gnn_lr=2e-4", "val_count=null", "plugins=[a, b]", "hflip=false"])
    assert parsed == {"alpha": 4, "gnn_lr": "2e-4", "val_count": None, "plugins": ["a", "b"], "hflip": False}
    cfg = apply_overrides(TrainConfig(), {**parsed, "plugins": []})
    assert cfg.alpha == 4.0 and isinstance(cfg.alpha, float) and cfg.gnn_lr == 2e-4 and cfg.hflip is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epoch": 3}, "unknown config key(s) 'epoch'"),
        ({"epochs": "ten"}, "'epochs' must be integer"),
        ({"epochs": 2.5}, "'epochs' must be integer"),
        ({"hflip": 1}, "'hflip' must be true/false"),
        ({"alpha": True}, "'alpha' must be number"),
        ({"crop_scale": [0.5]}, "'crop_scale' must be list of number (length 2)"),
        ({"selection": "best"}, "'selection' must be 'val' | 'test' | 'last'"),
        ({"backbone": "resnet1000"}, "'backbone': unknown name 'resnet1000'; choose one of dino_vits16, googlenet"),
        ({"metric_loss": "nope"}, "'metric_loss': unknown name 'nope'; choose one of"),
        ({"node_to_node": "nope"}, "'node_to_node': unknown name 'nope'; choose one of"),
        ({"generator": "nope"}, "'generator': unknown name 'nope'; choose one of gca, hdml, none"),
        ({"per_class": 1}, "'per_class' must be >= 2"),
        ({"heads": 3}, "'heads' (3) must divide 'embedding_dim' (512)"),
        ({"val_fraction": None}, "selection 'val' needs exactly one of 'val_fraction' and 'val_count'"),
        ({"device": "tpu"}, "'device' must be auto, cpu"),
        ({"plugins": ["no_such_module_xyz"]}, "'plugins': cannot import 'no_such_module_xyz'"),
    ],
)
def test_bad_values_name_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(TrainConfig(), overrides)


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "key.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"key\.yaml.*unknown config key\(s\) 'learning_rate'"):
        load_config(tmp_path / "key.yaml")
    with pytest.raises(ConfigError, match="--set expects key=value"):
        parse_assignments(["alpha"])


def test_plugins_are_imported_before_names_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins_undone: None
) -> None:
    (tmp_path / "my_loss_plugin.py").write_text(
        "from gcahng.losses import METRIC_LOSSES, NPairLoss\n"
        "METRIC_LOSSES.register('my_npair')(type('MyNPair', (NPairLoss,), {}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = apply_overrides(TrainConfig(), {"plugins": ["my_loss_plugin"], "metric_loss": "my_npair"})
    assert cfg.metric_loss == "my_npair"
