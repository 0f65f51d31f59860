"""The grid of an ablation: ``--grid KEY=V1,V2,...`` options -> validated cells and runs.

    axes = parse_grid(["generator=none,hdml,gca", "node_to_node=attention,mean"])
    plan = build_plan(base_cfg, axes, seeds=range(3))
    for run in plan.runs: ...           # cell by cell, each cell seed by seed

A key is any :class:`~gcahng.config.TrainConfig` field; each value is read as YAML (like
``--set``) and coerced by the config itself, so ``alpha=4,5`` gives floats and
``node_to_node=mean,my_layer`` is checked against the registry. Every cell's config is
built when the plan is, so a bad value fails before any training starts.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

from gcahng.config import FIELD_NAMES, TrainConfig, apply_overrides
from gcahng.errors import ConfigError

# keys an ablation sets itself
RESERVED_KEYS = {"seed": "the seeds come from --seeds and --seed-offset"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_MAX_SLUG = 120


def split_values(text: str) -> list[str]:
    """``"a,[1, 2],b"`` -> ``["a", "[1, 2]", "b"]``: commas inside brackets or braces do not split."""
    items, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items]


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["key=v1,v2", ...]`` -> ``{key: [v1, v2]}`` in the order given, values read as YAML.

    Raises :class:`ConfigError` for a malformed item, an unknown key (listing the valid
    ones), a reserved key (``seed``), a key given twice, or an empty value.
    """
    axes: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        if key not in FIELD_NAMES:
            raise ConfigError(f"--grid {item!r}: unknown config key {key!r}; valid keys: {', '.join(FIELD_NAMES)}")
        if key in RESERVED_KEYS:
            raise ConfigError(f"--grid {item!r}: {key!r} cannot be a grid key; {RESERVED_KEYS[key]}")
        if key in axes:
            raise ConfigError(f"--grid: key {key!r} is given twice; list all its values in one --grid {key}=V1,V2,...")
        values = []
        for text_value in split_values(text):
            if not text_value:
                raise ConfigError(f"--grid {item!r}: empty value; write KEY=V1,V2,... without empty entries")
            try:
                values.append(yaml.safe_load(text_value))
            except yaml.YAMLError as err:
                raise ConfigError(f"--grid {item!r}: value {text_value!r} is not valid YAML: {err}") from None
        axes[key] = values
    return axes


def format_value(value: Any) -> str:
    """A value as a user writes it: strings bare, the rest as JSON (``true``, ``null``, ``[0.8, 1.0]``)."""
    return value if isinstance(value, str) else json.dumps(value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Cell:
    """One point of the grid: ``values`` (grid key -> coerced value) and its folder name ``slug``."""

    values: dict[str, Any]
    slug: str

    @property
    def label(self) -> str:
        """``generator=gca, node_to_node=mean`` (``base`` for an empty grid)."""
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.values.items()) or "base"


@dataclass(frozen=True)
class Run:
    """One training run: a cell at one seed, with its full config."""

    cell: Cell
    seed: int
    config: TrainConfig

    @property
    def folder(self) -> str:
        """The run folder relative to the ablation's output folder."""
        return f"runs/{self.cell.slug}/seed{self.seed}"


@dataclass(frozen=True)
class AblationPlan:
    """The validated grid: ``keys`` varied, ``cells`` in grid order, ``runs`` cell-major."""

    base: TrainConfig
    keys: tuple[str, ...]
    cells: tuple[Cell, ...]
    seeds: tuple[int, ...]
    runs: tuple[Run, ...]


def _slug(values: Mapping[str, Any]) -> str:
    text = ",".join(f"{k}={_UNSAFE.sub('-', format_value(v))}" for k, v in values.items()) or "base"
    if len(text) > _MAX_SLUG:  # keep folder names within file-system limits
        text = text[:_MAX_SLUG] + "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return text


def _with(base: TrainConfig, overrides: Mapping[str, Any], what: str) -> TrainConfig:
    try:
        return apply_overrides(base, overrides)
    except ConfigError as err:
        raise ConfigError(f"{what}: {str(err).removeprefix('with the overrides: ')}") from None


def _attempt(base: TrainConfig, overrides: Mapping[str, Any], what: str) -> TrainConfig | ConfigError:
    try:
        return _with(base, overrides, what)
    except ConfigError as err:
        return err


def _check_duplicates(base: TrainConfig, axes: Mapping[str, list[Any]]) -> None:
    for key, values in axes.items():
        seen: list[Any] = []
        for value in values:
            alone = _attempt(base, {key: value}, "")
            plain = value if isinstance(alone, ConfigError) else _plain(getattr(alone, key))
            if plain in seen:
                raise ConfigError(f"--grid {key}: the value {format_value(value)} is listed twice")
            seen.append(plain)


def _cell_configs(base: TrainConfig, axes: Mapping[str, list[Any]]) -> list[TrainConfig]:
    """The config of every combination; the first invalid one raises. A value that fails in
    every cell holding it gets the error of that value alone (``--grid key=value: ...``); other
    failures name the cell (e.g. ``heads=3`` with ``embedding_dim=64``)."""
    index_sets = list(itertools.product(*(range(len(v)) for v in axes.values())))
    results = []
    for indices in index_sets:
        values = {key: axes[key][i] for key, i in zip(axes, indices)}
        label = ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
        results.append(_attempt(base, values, f"--grid cell {label}"))
    for indices, result in zip(index_sets, results):
        if not isinstance(result, ConfigError):
            continue
        for position, (key, i) in enumerate(zip(axes, indices)):
            always_fails = all(isinstance(r, ConfigError) for ix, r in zip(index_sets, results) if ix[position] == i)
            if always_fails:
                _with(base, {key: axes[key][i]}, f"--grid {key}={format_value(axes[key][i])}")  # raises if alone bad
        raise result
    return results  # type: ignore[return-value]  (no error left)


def build_plan(base: TrainConfig, axes: Mapping[str, list[Any]], seeds: Iterable[int]) -> AblationPlan:
    """Validate every cell against ``base`` and list the runs (the first key varies slowest).

    Values are stored as the config coerces them (``alpha=4`` -> ``4.0``); two values that
    coerce to the same config value are an error, as is any invalid cell (see
    :func:`_cell_configs` for how the error is worded).
    """
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"the seeds must be distinct and at least one, got {list(seeds)}")
    _check_duplicates(base, axes)
    cells, runs = [], []
    for cell_cfg in _cell_configs(base, axes):
        values = {key: _plain(getattr(cell_cfg, key)) for key in axes}
        cell = Cell(values, _slug(values))
        cells.append(cell)
        runs += [Run(cell, seed, _with(cell_cfg, {"seed": seed}, f"cell {cell.label}, seed {seed}")) for seed in seeds]
    slugs = [c.slug for c in cells]
    if len(set(slugs)) != len(slugs):  # values that differ only in characters unsafe in file names
        cells = [Cell(c.values, f"{c.slug}-{i}") for i, c in enumerate(cells)]
        by_label = {c.label: c for c in cells}
        runs = [Run(by_label[r.cell.label], r.seed, r.config) for r in runs]
    return AblationPlan(base, tuple(axes), tuple(cells), seeds, tuple(runs))
