"""The config a new run (``gcahng fit``) or every cell of an ablation (``gcahng ablate``) starts from."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gcahng.config import DEFAULT_BACKBONE, DEFAULT_DATASET, TrainConfig, apply_overrides, load_config, preset_path


def start_config(dataset: str | None, config_file: str | None, overrides: Mapping[str, Any],
                 plugins: tuple[str, ...], echo: Callable[[str], None]) -> TrainConfig:
    """``config_file``, or else the preset of ``dataset`` (default digits) and the backbone of
    ``overrides`` (defaults when there is none; ``echo`` says which), with ``overrides`` applied,
    the ``plugins`` appended to its own and every component name checked (plugins imported)."""
    from gcahng.training.names import check_names

    path = Path(config_file) if config_file is not None else None
    if path is None:
        name, backbone = dataset or DEFAULT_DATASET, overrides.get("backbone")
        path = preset_path(name, backbone)
        echo(f"config: preset {path.name}" if path else
             f"config: defaults (no preset for {name} with {backbone or DEFAULT_BACKBONE})")
    cfg = load_config(path, overrides)
    if plugins:
        cfg = apply_overrides(cfg, {"plugins": [*cfg.plugins, *(p for p in plugins if p not in cfg.plugins)]})
    check_names(cfg)
    return cfg
