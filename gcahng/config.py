"""The training configuration: one typed dataclass, read from YAML, overridable field by field.

    cfg = load_config("configs/cub200_resnet50.yaml", overrides={"epochs": 10})
    cfg = apply_overrides(cfg, parse_assignments(["alpha=4", "plugins=[my_layers]"]))
    save_config(cfg, run_dir / "config.yaml")

Every field is checked when a :class:`TrainConfig` is built: an unknown key, a value of the
wrong type or out of range raises :class:`~gcahng.errors.ConfigError` naming the key. Building
one imports no torch: the component names (dataset, backbone, layers, metric loss) and the
``plugins`` that may register more are checked by :func:`gcahng.training.names.check_names`.

A YAML file may start from another one with ``base: OTHER.yaml`` (a path relative to the
file): its keys are read first and the file's own keys replace them.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from gcahng.choices import (
    ClassAugmentation,
    EdgeDropout,
    GeneratorMode,
    GraphScope,
    RandomWeighting,
    Selection,
    SelectionMetric,
)
from gcahng.errors import ConfigError
from gcahng.hyperparameters import GCLConfig, GeneratorConfig, LossWeights, StepConfig
from gcahng.user_paths import describe, regular_file

PRESETS_DIR = Path(__file__).parent / "configs"
DEFAULT_DATASET = "digits"
DEFAULT_BACKBONE = "resnet50"
BASE_KEY = "base"
MAX_SEED = 2**32 - 1  # numpy's and torch's seeding accept 0..2**32-1 everywhere

# the defaults of the grouped hyper-parameters, written once in gcahng.hyperparameters
_GCL, _GENERATOR, _LOSS, _STEP = GCLConfig(), GeneratorConfig(), LossWeights(), StepConfig()


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run (method.md §6-§8). Units: learning rates per step,
    periods in epochs, sizes in pixels.

    Model selection (``selection``): ``val`` picks ``best.pt`` on a class-disjoint part of
    the training classes (``val_fraction`` of them, or ``val_count``); ``test`` on the test
    split, as the reference release does (reproduction presets only: it peeks at the test
    set); ``last`` keeps the final epoch (periodic evaluation then runs on the test split for
    the curves only). ``selection_metric`` is the score compared.
    """

    # data
    dataset: str = DEFAULT_DATASET
    data_root: str | None = None
    image_size: int = 224
    resize_size: int | None = None  # test-time resize of the shorter side; None: image_size * 256/224
    crop_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop scale range
    hflip: bool = True
    class_augmentation: ClassAugmentation = "none"  # training classes x 4 rotations / x 8 with mirrors
    classes_per_batch: int = 27  # C
    per_class: int = 3  # m
    workers: int | None = None  # data-loading processes; None: 0 on the CPU, min(8, cores) otherwise
    # embedding network (method.md §7)
    backbone: str = DEFAULT_BACKBONE
    embedding_dim: int = 512
    pretrained: bool = True
    weights: str | None = None  # local backbone weights file, instead of the standard ones
    freeze_bn: bool = True
    # hard-negative generation (method.md §3-§5)
    generator: GeneratorMode = _STEP.mode
    metric_loss: str = "npair"
    gcl_iterations: int = _GCL.iterations  # K
    heads: int = _GCL.heads  # H
    node_to_node: str = _GCL.node_to_node
    edge_to_node: str = _GCL.edge_to_node
    node_to_edge: str = _GCL.node_to_edge
    dropout: float = _GCL.dropout
    edge_dropout: EdgeDropout = _GCL.edge_dropout
    random_weighting: RandomWeighting = _GENERATOR.random_weighting
    alpha: float = _LOSS.alpha
    beta: float = _LOSS.beta
    softmax_weight: float = _LOSS.softmax_weight  # S
    w_dot: float = _LOSS.w_dot
    w_div: float = _LOSS.w_div
    cls_weight: float = _LOSS.cls_weight
    plugins: tuple[str, ...] = ()  # modules that register components, imported by check_names
    # optimisation (method.md §6)
    epochs: int = 100
    base_lr: float = 1.5e-4
    embedding_lr_ratio: float = 1.0  # head lr = base_lr * ratio
    gnn_lr: float = 1.5e-4
    classifier_lr: float = 1e-3
    weight_decay: float = 1e-4
    decay_epochs: int = 10  # StepLR period of the embedding optimiser
    decay_gamma: float = 0.5
    warmup_epochs: int = 2  # backbone frozen
    grad_clip: float = _STEP.grad_clip  # by value
    # evaluation and model selection
    eval_every: int = 5  # epochs; the last epoch is always evaluated
    selection: Selection = "val"
    selection_metric: SelectionMetric = "map@r"
    val_fraction: float | None = 0.2
    val_count: int | None = None
    eval_batch_size: int = 128
    # run
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool = False  # bfloat16 autocast of the embedding network and the GCL (CUDA or CPU)
    graph_scope: GraphScope = "global"  # under torchrun: one graph over all ranks, or one per rank

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), _HINTS[f.name]))
        _check_values(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def eval_split(self) -> str:
        """The split evaluated during training: ``val`` or ``test``."""
        return "val" if self.selection == "val" else "test"

    @property
    def gcl(self) -> GCLConfig:
        """The GCL hyper-parameters (``gcl_iterations``, ``heads``, the layer names, ``dropout``, ``edge_dropout``)."""
        return GCLConfig(iterations=self.gcl_iterations, heads=self.heads, node_to_node=self.node_to_node,
                         edge_to_node=self.edge_to_node, node_to_edge=self.node_to_edge, dropout=self.dropout,
                         edge_dropout=self.edge_dropout)

    @property
    def generator_config(self) -> GeneratorConfig:
        """The hard-negative generator's: :attr:`gcl` and ``random_weighting``."""
        return GeneratorConfig(gcl=self.gcl, random_weighting=self.random_weighting)

    @property
    def loss_weights(self) -> LossWeights:
        """``alpha``, ``beta``, ``softmax_weight``, ``w_dot``, ``w_div``, ``cls_weight``."""
        return LossWeights(alpha=self.alpha, beta=self.beta, softmax_weight=self.softmax_weight, w_dot=self.w_dot,
                           w_div=self.w_div, cls_weight=self.cls_weight)

    @property
    def step_config(self) -> StepConfig:
        """The training step's: :attr:`loss_weights`, ``grad_clip`` and the ``generator`` mode."""
        return StepConfig(loss_weights=self.loss_weights, grad_clip=self.grad_clip, mode=self.generator)


_HINTS = typing.get_type_hints(TrainConfig)
_EXPONENT_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"list of {_type_name(args[0])}" + (f" (length {len(args)})" if args[-1] is not Ellipsis else "")
    return {int: "integer", float: "number", bool: "true/false", str: "string"}.get(hint, str(hint))


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the type ``hint`` (ints accepted as floats, lists as tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    bad = ConfigError(f"config key {key!r} must be {_type_name(hint)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(key, value, next(a for a in args if a is not type(None)))
    if origin is Literal:
        if value not in args:
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        item_hints = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_hints) != len(value):
            raise bad
        return tuple(_coerce(key, v, h) for v, h in zip(value, item_hints, strict=False))
    if hint is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.match(value):  # YAML 1.1 reads 1e-4 as a string
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf
        if not math.isfinite(number):
            shown = repr(value) if isinstance(value, float) else "an integer beyond the floating-point range"
            raise ConfigError(f"config key {key!r} must be a finite number, got {shown}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if not isinstance(value, hint):
        raise bad
    return value


def _check_values(cfg: TrainConfig) -> None:
    positive = ("image_size", "embedding_dim", "gcl_iterations", "heads", "epochs",
                "decay_epochs", "eval_every", "eval_batch_size")
    for key in positive:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    if cfg.classes_per_batch < 2:
        raise ConfigError("config key 'classes_per_batch' must be >= 2 (each anchor needs negatives of another "
                          f"class), got {cfg.classes_per_batch}")
    if cfg.per_class < 2:
        raise ConfigError(f"config key 'per_class' must be >= 2 (each anchor needs a positive), got {cfg.per_class}")
    for key in ("base_lr", "gnn_lr", "classifier_lr", "grad_clip", "decay_gamma"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"config key {key!r} must be > 0, got {getattr(cfg, key)}")
    for key in ("warmup_epochs", "weight_decay", "embedding_lr_ratio"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"config key 'seed' must be between 0 and {MAX_SEED} (2**32 - 1), got {cfg.seed}")
    if cfg.workers is not None and cfg.workers < 0:
        raise ConfigError(f"config key 'workers' must be >= 0 or null, got {cfg.workers}")
    if cfg.embedding_dim % cfg.heads:
        raise ConfigError(f"config key 'heads' ({cfg.heads}) must divide 'embedding_dim' ({cfg.embedding_dim})")
    if cfg.resize_size is not None and cfg.resize_size < cfg.image_size:
        raise ConfigError(f"config key 'resize_size' ({cfg.resize_size}) must be >= 'image_size' ({cfg.image_size})")
    low, high = cfg.crop_scale
    if not 0.0 < low <= high <= 1.0:
        raise ConfigError(f"config key 'crop_scale' must satisfy 0 < low <= high <= 1, got {list(cfg.crop_scale)}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"config key 'dropout' must be in [0, 1), got {cfg.dropout}")
    if cfg.selection == "val":
        if (cfg.val_fraction is None) == (cfg.val_count is None):
            raise ConfigError(
                "selection 'val' needs exactly one of 'val_fraction' and 'val_count' (set the other to null)"
            )
        if cfg.val_fraction is not None and not 0.0 < cfg.val_fraction < 1.0:
            raise ConfigError(f"config key 'val_fraction' must be between 0 and 1, got {cfg.val_fraction}")
        if cfg.val_count is not None and cfg.val_count < 1:
            raise ConfigError(f"config key 'val_count' must be >= 1, got {cfg.val_count}")
    if cfg.device not in ("auto", "cpu", "cuda", "mps") and re.fullmatch(r"cuda:\d+", cfg.device) is None:
        raise ConfigError(f"config key 'device' must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}")


def config_from_dict(data: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from a mapping of field values (missing fields take the defaults)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must be a mapping of config keys to values, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in FIELD_NAMES)
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {', '.join(map(repr, unknown))}; "
                          f"valid keys: {', '.join(FIELD_NAMES)}")
    try:
        return TrainConfig(**dict(data))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's error in one line: the problem and where it is."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem or err.context} (line {mark.line + 1}, column {mark.column + 1})"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def read_yaml(path: str | Path, *, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping in the YAML file ``path``, on top of its ``base:`` file if it names one;
    problems raise ``ConfigError`` naming the file."""
    path = Path(path).expanduser()
    try:
        exists = path.exists()
    except OSError as err:  # a name too long, ...
        raise ConfigError(f"config file {str(path)[:200]!r} cannot be read: {err.strerror or err}") from None
    if not exists:
        raise ConfigError(f"config file {describe(path)!r} does not exist")
    regular_file(path, "config file", ConfigError)  # a FIFO would block the read
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text (byte {err.start}: {err.reason})") from None
    except OSError as err:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {_yaml_problem(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values")
    if BASE_KEY not in data:
        return data
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config file {str(path)!r}: {BASE_KEY!r} must be the path of a YAML file, got {base!r}")
    base_path = path.parent / base
    if base_path.resolve() in {p.resolve() for p in (*_chain, path)}:
        raise ConfigError(f"config file {str(path)!r}: {BASE_KEY!r} {base!r} leads back to itself")
    return {**read_yaml(base_path, _chain=(*_chain, path)), **data}


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The config in YAML file ``path`` (or the defaults) with ``overrides`` applied."""
    cfg = config_from_dict(read_yaml(path), source=f"config file {str(path)!r}") if path is not None else TrainConfig()
    return apply_overrides(cfg, overrides) if overrides else cfg


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``cfg`` with some fields replaced (checked like the rest, errors name them as overrides)."""
    unknown = sorted(str(k) for k in overrides if k not in FIELD_NAMES)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(map(repr, unknown))} in the overrides; "
                          f"valid keys: {', '.join(FIELD_NAMES)}")
    return config_from_dict({**cfg.to_dict(), **dict(overrides)}, source="with the overrides")


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}``, each value read as YAML (``4``, ``1e-4``,
    ``null``, ``[a, b]``, ``true``); keys are checked by :func:`config_from_dict`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML: {err}") from None
        out[key.strip()] = value
    return out


def preset_path(dataset: str, backbone: str | None = None) -> Path | None:
    """The shipped preset for ``dataset`` (and ``backbone``, default resnet50), if there is one."""
    name = dataset if dataset == DEFAULT_DATASET else f"{dataset}_{backbone or DEFAULT_BACKBONE}"
    path = PRESETS_DIR / f"{name}.yaml"
    return path if path.is_file() else None


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML, every field, in declaration order (atomically; a full disk is an error naming it)."""
    from gcahng.formats.atomic import write_atomically, write_bytes

    write_atomically(path, write_bytes(yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()))
