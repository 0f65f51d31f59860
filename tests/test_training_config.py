"""The typed training config: presets, YAML loading, overrides and their errors."""
from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
from gcahng.hyperparameters import GCLConfig, GeneratorConfig, LossWeights, StepConfig
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
        ({"generator": "nope"}, "'generator' must be 'gca' | 'hdml' | 'none', got 'nope'"),
        ({"random_weighting": "each"}, "'random_weighting' must be 'shared' | 'per-pair', got 'each'"),
        ({"per_class": 1}, "'per_class' must be >= 2"),
        ({"classes_per_batch": 1}, "'classes_per_batch' must be >= 2 (each anchor needs negatives of another class)"),
        ({"heads": 3}, "'heads' (3) must divide 'embedding_dim' (512)"),
        ({"val_fraction": None}, "selection 'val' needs exactly one of 'val_fraction' and 'val_count'"),
        ({"device": "tpu"}, "'device' must be auto, cpu"),
        ({"device": "cuda:abc"}, "'device' must be auto, cpu, cuda, cuda:N or mps, got 'cuda:abc'"),
        ({"device": "cpu:0"}, "'device' must be auto, cpu, cuda, cuda:N or mps, got 'cpu:0'"),
        ({"alpha": float("nan")}, "'alpha' must be a finite number, got nan"),
        ({"base_lr": float("inf")}, "'base_lr' must be a finite number, got inf"),
        ({"crop_scale": [0.5, float("nan")]}, "'crop_scale' must be a finite number, got nan"),
        ({"val_fraction": float("-inf")}, "'val_fraction' must be a finite number, got -inf"),
        ({"alpha": "1e999"}, "'alpha' must be a finite number, got inf"),
        ({"beta": 10**400}, "'beta' must be a finite number, got an integer beyond the floating-point range"),
        ({"decay_gamma": 0}, "'decay_gamma' must be > 0, got 0.0"),
        ({"decay_gamma": -0.5}, "'decay_gamma' must be > 0, got -0.5"),
        ({"seed": -1}, "'seed' must be between 0 and 4294967295 (2**32 - 1), got -1"),
        ({"seed": 2**32}, "'seed' must be between 0 and 4294967295 (2**32 - 1), got 4294967296"),
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
    for name, text, problem in (("twice.yaml", "epochs: 1\nepochs: 2\n",
                                 "key 'epochs' is given twice (line 2, column 1)"),
                                ("tab.yaml", "a:\n\t- x\n", "(line 2, column 1)"),
                                ("two.yaml", "a: 1\n---\nb: 2\n", "but found another document (line 2, column 1)")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=re.escape(f"{name}' is not valid YAML: ") + ".*" + re.escape(problem)
                           ) as caught:
            load_config(tmp_path / name)
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot be read: File name too long"):
        load_config(tmp_path / ("a" * 300 + ".yaml"))
    (tmp_path / "latin1.yaml").write_bytes("# réglages\nepochs: 3\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config file '.*latin1\.yaml' is not UTF-8 text \(byte 3"):
        load_config(tmp_path / "latin1.yaml")


def test_a_nan_in_a_yaml_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "nan.yaml").write_text("epochs: 3\nbeta: .nan\n")
    with pytest.raises(ConfigError, match=r"nan\.yaml.*'beta' must be a finite number, got nan"):
        load_config(tmp_path / "nan.yaml")
    with pytest.raises(ConfigError, match="'w_div' must be a finite number, got inf"):
        apply_overrides(TrainConfig(), parse_assignments(["w_div=.inf"]))


def test_the_seed_range_is_what_numpy_and_torch_accept() -> None:
    for seed in (0, 2**32 - 1):
        cfg = apply_overrides(TrainConfig(), {"seed": seed})
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)  # the strictest of the seeding functions: 0..2**32-1
    with pytest.raises(ValueError):
        np.random.seed(2**32)


def test_a_base_file_is_read_first_and_the_file_s_own_keys_replace_its_keys(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "common.yaml").write_text("epochs: 7\nalpha: 3.0\n")
    (tmp_path / "run.yaml").write_text("base: shared/common.yaml\nalpha: 4.0\n")
    cfg = load_config(tmp_path / "run.yaml")
    assert (cfg.epochs, cfg.alpha) == (7, 4.0)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match=r"loop\.yaml.*'base' 'loop\.yaml' leads back to itself"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "gone.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml' does not exist"):
        load_config(tmp_path / "gone.yaml")
    (tmp_path / "number.yaml").write_text("base: 3\n")
    with pytest.raises(ConfigError, match=r"number\.yaml.*'base' must be the path of a YAML file, got 3"):
        load_config(tmp_path / "number.yaml")


def test_every_preset_loads_exactly_as_before_the_presets_shared_a_base() -> None:
    """tests/assets/preset_configs.json was written from the presets before they were reduced to
    what differs from the defaults and base/release.yaml; since then only the digits schedule changed
    on purpose (6 epochs, decay at 6, no crops: issue 16's quick start)."""
    expected = json.loads((Path(__file__).parent / "assets" / "preset_configs.json").read_text())
    assert sorted(expected) == sorted(preset_names())
    for name in preset_names():
        assert load_config(PRESETS_DIR / f"{name}.yaml").to_dict() == expected[name], name


def test_grouped_hyperparameters_take_the_flat_keys() -> None:
    cfg = apply_overrides(TrainConfig(), {"gcl_iterations": 3, "heads": 2, "node_to_node": "mean", "dropout": 0.2,
                                          "random_weighting": "per-pair", "alpha": 4.0, "w_div": 10.0,
                                          "grad_clip": 5.0, "generator": "hdml"})
    assert cfg.gcl == GCLConfig(iterations=3, heads=2, node_to_node="mean", dropout=0.2)
    assert cfg.generator_config == GeneratorConfig(cfg.gcl, random_weighting="per-pair")
    assert cfg.loss_weights == LossWeights(alpha=4.0, w_div=10.0)
    assert cfg.step_config == StepConfig(cfg.loss_weights, grad_clip=5.0, mode="hdml")
    defaults = TrainConfig()  # the flat defaults are the groups' defaults
    assert (defaults.gcl, defaults.generator_config, defaults.step_config) == (GCLConfig(), GeneratorConfig(),
                                                                              StepConfig())


def test_building_a_config_imports_no_torch_pyg_or_torchvision(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from gcahng.config import load_config, apply_overrides, TrainConfig\n"
        "from gcahng.choices import GENERATOR_MODES\n"
        "from gcahng.hyperparameters import StepConfig\n"
        "cfg = load_config(sys.argv[1], {'metric_loss': 'no_such_loss'})\n"
        "apply_overrides(cfg, {'alpha': 3}).step_config\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torch_geometric', 'torchvision'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(PRESETS_DIR / "cub200_resnet50.yaml")],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
