"""Component names of a config checked against the registries, plugins imported first."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from gcahng.config import TrainConfig, apply_overrides
from gcahng.errors import ConfigError
from gcahng.graph import NODE_TO_NODE
from gcahng.training.names import check_names


def test_the_defaults_and_every_preset_name_registered_components() -> None:
    check_names(TrainConfig())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"backbone": "resnet1000"},
         "'backbone': unknown name 'resnet1000'; choose one of dino_vits16, efficientnet_lite0, googlenet"),
        ({"metric_loss": "nope"}, "'metric_loss': unknown name 'nope'; choose one of"),
        ({"node_to_node": "nope"},
         f"'node_to_node': unknown name 'nope'; choose one of {', '.join(NODE_TO_NODE.names())}"),
        ({"edge_to_node": "nope"}, "'edge_to_node': unknown name 'nope'; choose one of"),
        ({"node_to_edge": "nope"}, "'node_to_edge': unknown name 'nope'; choose one of"),
        ({"dataset": "imagenet"}, "'dataset': unknown name 'imagenet'; choose one of"),
        ({"plugins": ["no_such_module_xyz"]}, "'plugins': cannot import 'no_such_module_xyz'"),
    ],
)
def test_unregistered_names_name_the_key_and_list_the_registered_ones(overrides: dict, message: str) -> None:
    cfg = apply_overrides(TrainConfig(), overrides)  # types and ranges only: the name is not checked here
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_names(cfg)


def test_plugins_are_imported_before_names_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins_undone: None
) -> None:
    (tmp_path / "my_loss_plugin.py").write_text(
        "from gcahng.losses import METRIC_LOSSES, NPairLoss\n"
        "METRIC_LOSSES.register('my_npair')(type('MyNPair', (NPairLoss,), {}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = apply_overrides(TrainConfig(), {"plugins": ["my_loss_plugin"], "metric_loss": "my_npair"})
    check_names(cfg)
    assert cfg.metric_loss == "my_npair"
