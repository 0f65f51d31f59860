"""The grid of an ablation: ``--grid`` options -> validated cells and runs.

    axes = parse_grid(["generator=none,hdml,gca", "node_to_node=attention,mean"])
    plan = build_plan(base_cfg, axes, seeds=range(3))
    for run in plan.runs: ...           # cell by cell, each cell seed by seed

``KEY=V1,V2,...`` is one axis of the Cartesian product. A key is any
:class:`~gcahng.config.TrainConfig` field; each value is read as YAML (like ``--set``) and
coerced by the config itself, so ``alpha=4,5`` gives floats and ``node_to_node=mean,my_layer``
is checked against the registry. ``[KEY1,KEY2]=[A1,A2],[B1,B2]`` is one axis whose points set
several keys together: ``[generator,node_to_node]=[hdml,none],[gca,attention],[gca,mean]``
varies the layer only where the graph network runs, instead of training identical
``hdml`` runs once per layer. Every cell's config is built and its component names checked
(:func:`~gcahng.training.names.check_names`) when the plan is, so a bad value fails before any
training starts.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from gcahng.config import FIELD_NAMES, TrainConfig, apply_overrides
from gcahng.errors import ConfigError
from gcahng.training.names import check_names

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


def format_value(value: Any) -> str:
    """A value as a user writes it: strings bare, the rest as JSON (``true``, ``null``, ``[0.8, 1.0]``)."""
    return value if isinstance(value, str) else json.dumps(value)


def _label(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in values.items())


@dataclass(frozen=True)
class Axis:
    """One ``--grid``: the ``keys`` it sets and its ``points``, each a tuple of one value per key."""

    keys: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]

    def assignment(self, index: int) -> dict[str, Any]:
        return dict(zip(self.keys, self.points[index], strict=False))


def _yaml(item: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--grid {item!r}: {text!r} is not valid YAML: {err}") from None


def _parse_keys(item: str, text: str) -> tuple[str, ...]:
    keys = _yaml(item, text) if text.startswith("[") else [text]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise ConfigError(f"--grid {item!r}: the keys must be KEY or [KEY1,KEY2,...]")
    for key in keys:
        if key not in FIELD_NAMES:
            raise ConfigError(f"--grid {item!r}: unknown config key {key!r}; valid keys: {', '.join(FIELD_NAMES)}")
        if key in RESERVED_KEYS:
            raise ConfigError(f"--grid {item!r}: {key!r} cannot be a grid key; {RESERVED_KEYS[key]}")
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--grid {item!r}: a key is listed twice")
    return tuple(keys)


def parse_grid(items: Iterable[str]) -> list[Axis]:
    """``["key=v1,v2", "[k1,k2]=[a1,a2],[b1,b2]", ...]`` -> the axes in the order given, values read as YAML.

    Raises :class:`ConfigError` for a malformed item, an unknown key (listing the valid
    ones), a reserved key (``seed``), a key in two axes, an empty value, or a point of a
    linked axis whose length is not the number of its keys.
    """
    axes: list[Axis] = []
    seen: set[str] = set()
    for item in items:
        key_text, sep, text = item.partition("=")
        key_text = key_text.strip()
        if not sep or not key_text:
            raise ConfigError(f"--grid expects KEY=V1,V2,... or [KEY1,KEY2]=[A1,A2],[B1,B2],..., got {item!r}")
        keys = _parse_keys(item, key_text)
        repeated = sorted(seen & set(keys))
        if repeated:
            raise ConfigError(f"--grid: key {repeated[0]!r} is given twice; list all its values in one --grid")
        seen |= set(keys)
        points = []
        for value_text in split_values(text):
            if not value_text:
                raise ConfigError(f"--grid {item!r}: empty value; write KEY=V1,V2,... without empty entries")
            value = _yaml(item, value_text)
            if len(keys) == 1:
                points.append((value,))
            elif isinstance(value, list) and len(value) == len(keys):
                points.append(tuple(value))
            else:
                raise ConfigError(f"--grid {item!r}: {value_text!r} must be a list of {len(keys)} values, "
                                  f"one per key of {list(keys)}")
        axes.append(Axis(keys, tuple(points)))
    return axes


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
        return _label(self.values) or "base"


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
    """``base`` with ``overrides``, its names checked; errors start with ``what``."""
    try:
        cfg = apply_overrides(base, overrides)
        check_names(cfg)
        return cfg
    except ConfigError as err:
        raise ConfigError(f"{what}: {str(err).removeprefix('with the overrides: ')}") from None


def _attempt(base: TrainConfig, overrides: Mapping[str, Any], what: str) -> TrainConfig | ConfigError:
    try:
        return _with(base, overrides, what)
    except ConfigError as err:
        return err


def _check_duplicates(base: TrainConfig, axes: Sequence[Axis]) -> None:
    """Two points of an axis that the config coerces to the same values would be one cell twice."""
    for axis in axes:
        seen: list[Any] = []
        for index in range(len(axis.points)):
            assignment = axis.assignment(index)
            alone = _attempt(base, assignment, "")
            plain = assignment if isinstance(alone, ConfigError) else {k: _plain(getattr(alone, k)) for k in axis.keys}
            if plain in seen:
                raise ConfigError(f"--grid: the value {_label(assignment)} is listed twice")
            seen.append(plain)


def _cell_configs(base: TrainConfig, axes: Sequence[Axis]) -> list[TrainConfig]:
    """The config of every combination; the first invalid one raises. A point that fails in
    every cell holding it gets the error of that point alone (``--grid key=value: ...``); other
    failures name the cell (e.g. ``heads=3`` with ``embedding_dim=64``)."""
    index_sets = list(itertools.product(*(range(len(axis.points)) for axis in axes)))
    results = []
    for indices in index_sets:
        values = {k: v for axis, i in zip(axes, indices, strict=False) for k, v in axis.assignment(i).items()}
        results.append(_attempt(base, values, f"--grid cell {_label(values)}"))
    for indices, result in zip(index_sets, results, strict=False):
        if isinstance(result, ConfigError):
            for position, (axis, i) in enumerate(zip(axes, indices, strict=False)):
                if all(
                    isinstance(r, ConfigError)
                    for ix, r in zip(index_sets, results, strict=False)
                    if ix[position] == i
                ):
                    _with(base, axis.assignment(i), f"--grid {_label(axis.assignment(i))}")  # raises if bad alone
            raise result
    return [r for r in results if isinstance(r, TrainConfig)]


def build_plan(base: TrainConfig, axes: Sequence[Axis], seeds: Iterable[int]) -> AblationPlan:
    """Validate every cell against ``base`` and list the runs (the first axis varies slowest).

    Values are stored as the config coerces them (``alpha=4`` -> ``4.0``); two values that
    coerce to the same config value are an error, as is any invalid cell (see
    :func:`_cell_configs` for how the error is worded).
    """
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"the seeds must be distinct and at least one, got {list(seeds)}")
    _check_duplicates(base, axes)
    keys = tuple(k for axis in axes for k in axis.keys)
    cells, runs = [], []
    for cell_cfg in _cell_configs(base, axes):
        values = {key: _plain(getattr(cell_cfg, key)) for key in keys}
        cell = Cell(values, _slug(values))
        cells.append(cell)
        runs += [Run(cell, seed, _with(cell_cfg, {"seed": seed}, f"cell {cell.label}, seed {seed}")) for seed in seeds]
    slugs = [c.slug for c in cells]
    if len(set(slugs)) != len(slugs):  # values that differ only in characters unsafe in file names
        cells = [Cell(c.values, f"{c.slug}-{i}") for i, c in enumerate(cells)]
        by_label = {c.label: c for c in cells}
        runs = [Run(by_label[r.cell.label], r.seed, r.config) for r in runs]
    return AblationPlan(base, keys, tuple(cells), seeds, tuple(runs))
