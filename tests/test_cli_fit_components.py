"""``gcahng fit`` component options (issue 7, item 1): layers by name, a plugin's layer,
generator modes and metric losses, from the command line down to the training step."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from core_helpers import chunk_major_labels

from gcahng.choices import GENERATOR_MODES
from gcahng.cli import fit as fit_module
from gcahng.cli.main import cli
from gcahng.config import load_config, preset_path
from gcahng.graph import EDGE_TO_NODE, NODE_TO_NODE
from gcahng.losses import METRIC_LOSSES
from gcahng.training.build import build_training_parts

TINY = ["--device", "cpu", "--workers", "0", "--no-progress", "--embedding-dim", "16", "--image-size", "16",
        "--per-class", "8", "--set", "resize_size=16", "--epochs", "1"]


def _fit(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["fit", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_component_options_reach_the_run_config_and_train(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, output = _fit([*TINY, "--generator", "gca", "--metric-loss", "triplet", "--node-to-node", "mean",
                         "--edge-to-node", "mean", "--node-to-edge", "mlp", "--gcl-iterations", "2", "--heads", "4",
                         "--random-weighting", "per-pair", "--out", str(run)])
    assert code == 0, output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert {k: saved[k] for k in ("generator", "metric_loss", "node_to_node", "edge_to_node", "node_to_edge",
                                  "gcl_iterations", "heads", "random_weighting")} == {
        "generator": "gca", "metric_loss": "triplet", "node_to_node": "mean", "edge_to_node": "mean",
        "node_to_edge": "mlp", "gcl_iterations": 2, "heads": 4, "random_weighting": "per-pair"}
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"J_m", "J_gce", "J_gen"} <= set(record["loss"])
    assert all(math.isfinite(v) for v in record["loss"].values())


def test_a_layer_from_a_plugin_module_outside_the_package(tmp_path: Path, plugins_undone: None) -> None:
    assert "plugin_layers" not in sys.modules  # registered only by --plugin below
    code, output = _fit([*TINY, "--node-to-node", "plugin_counting_mean", "--out", str(tmp_path / "a")])
    registered = ", ".join(NODE_TO_NODE.names())
    assert code != 0 and f"unknown name 'plugin_counting_mean'; choose one of {registered}" in output
    run = tmp_path / "b"
    code, output = _fit([*TINY, "--plugin", "plugin_layers", "--node-to-node", "plugin_counting_mean",
                         "--set", "plugins=[core_helpers]", "--out", str(run)])
    assert code == 0, output
    plugin = sys.modules["plugin_layers"]
    assert not Path(plugin.__file__).resolve().is_relative_to(Path(fit_module.__file__).resolve().parents[1])
    assert plugin.CountingMean.calls > 0  # the generator's GCL really used the plugin's layer
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["plugins"] == ["core_helpers", "plugin_layers"] and saved["node_to_node"] == "plugin_counting_mean"


def test_bad_component_options(tmp_path: Path) -> None:
    code, output = _fit(["--edge-to-node", "max"])
    registered = ", ".join(EDGE_TO_NODE.names())
    assert code != 0 and f"config key 'edge_to_node': unknown name 'max'; choose one of {registered}" in output
    assert "Traceback" not in output
    code, output = _fit(["--metric-loss", "arcface"])
    assert code != 0 and f"choose one of {', '.join(METRIC_LOSSES.names())}" in output
    code, output = _fit(["--generator", "fancy"])
    assert code != 0 and "Invalid value for '--generator'" in output
    code, output = _fit(["--plugin", "no_such_module_here"])
    assert code != 0 and "cannot import 'no_such_module_here'" in output
    code, output = _fit(["--resume", str(tmp_path), "--plugin", "plugin_layers"])
    assert code != 0 and "drop --plugin" in output


C, M = 5, 4


@pytest.mark.parametrize("generator", GENERATOR_MODES)
@pytest.mark.parametrize("metric_loss", ["npair", "proxy_anchor", "multi_similarity", "triplet"])
def test_every_generator_and_metric_loss_builds_from_the_config_and_steps(generator: str, metric_loss: str) -> None:
    cfg = load_config(preset_path("digits"), {"generator": generator, "metric_loss": metric_loss, "device": "cpu",
                                              "embedding_dim": 16, "image_size": 16, "resize_size": 16})
    torch.manual_seed(0)
    parts = build_training_parts(cfg, num_classes=C, device=torch.device("cpu"))
    images, labels = torch.randn(C * M, 3, 16, 16), chunk_major_labels(C, M)
    for _ in range(2):  # the synthetic term starts in the second epoch
        losses = parts.step(images, labels, C, M)
        parts.step.end_epoch()
    assert ("J_syn" in losses) == (generator != "none") and ("J_gce" in losses) == (generator == "gca")
    assert all(math.isfinite(v) for v in losses.values()), losses
