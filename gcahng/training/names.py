"""Component names of a config checked against the registries, after importing its plugins.

    check_names(cfg)   # before any work: a ConfigError names the key and lists the registered names

:class:`~gcahng.config.TrainConfig` checks types and ranges without importing torch; the
names it holds (dataset, backbone, metric loss, GCL layers) need the registries, so
``gcahng fit`` and ``gcahng ablate`` (every cell of the grid) call :func:`check_names`.
"""
from __future__ import annotations

import importlib

from gcahng.config import TrainConfig
from gcahng.errors import ConfigError


def import_plugins(modules: tuple[str, ...] | list[str]) -> None:
    """Import the user's modules that register components."""
    for name in modules:
        if not name or name.startswith("."):
            raise ConfigError(f"config key 'plugins': {name!r} is not an absolute module name "
                              "(such as my_package.layers)")
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(f"config key 'plugins': cannot import {name!r}: {err}") from err


def check_names(cfg: TrainConfig) -> None:
    """Import ``cfg.plugins``, then require every component name of ``cfg`` to be registered;
    the error lists the registered ones."""
    import_plugins(cfg.plugins)
    from gcahng.data import DATASETS
    from gcahng.graph.registries import EDGE_TO_NODE, NODE_TO_EDGE, NODE_TO_NODE
    from gcahng.losses import METRIC_LOSSES
    from gcahng.models import BACKBONES

    registries = {
        "dataset": DATASETS,
        "backbone": BACKBONES,
        "metric_loss": METRIC_LOSSES,
        "node_to_node": NODE_TO_NODE,
        "edge_to_node": EDGE_TO_NODE,
        "node_to_edge": NODE_TO_EDGE,
    }
    for key, registry in registries.items():
        names = registry.names()
        if getattr(cfg, key) not in names:
            raise ConfigError(
                f"config key {key!r}: unknown name {getattr(cfg, key)!r}; choose one of {', '.join(names)}"
            )
