"""The method's hyper-parameters in small frozen groups, each default written once here
(no torch imported). :class:`~gcahng.config.TrainConfig` keeps them as flat keys (so config
files, ``--set`` and ``--grid`` name them as before) and builds these groups for the parts
that take them: :class:`GCLConfig` for :class:`~gcahng.graph.GCL`, :class:`GeneratorConfig`
for :class:`~gcahng.HardNegativeGenerator`, :class:`LossWeights` for the training step and
the generator loss, :class:`StepConfig` for :class:`~gcahng.training.TrainingStep`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gcahng.choices import GENERATOR_MODES, RANDOM_WEIGHTINGS, EdgeDropout, GeneratorMode, RandomWeighting
from gcahng.errors import InputError


@dataclass(frozen=True)
class GCLConfig:
    """Global Correlation Learning (method.md §3).

    ``iterations``: ``K``. ``heads``: ``H`` of the attention layers (must divide the embedding
    size). ``node_to_node``, ``edge_to_node``, ``node_to_edge``: layer names in the registries
    of :mod:`gcahng.graph.registries` (the defaults are the reference architecture).
    ``dropout``: on the node-to-edge attention weights, in training mode; ``edge_dropout``: drawn
    per unordered pair or per ordered edge (:data:`~gcahng.choices.EdgeDropout`). Checked by
    :class:`~gcahng.graph.GCL`.
    """

    iterations: int = 2
    heads: int = 4
    node_to_node: str = "attention"
    edge_to_node: str = "sum"
    node_to_edge: str = "attention"
    dropout: float = 0.1
    edge_dropout: EdgeDropout = "paired"


@dataclass(frozen=True)
class GeneratorConfig:
    """The hard-negative generator: its GCL and CACAI's ``random_weighting`` (method.md §4)."""

    gcl: GCLConfig = field(default_factory=GCLConfig)
    random_weighting: RandomWeighting = "shared"

    def __post_init__(self) -> None:
        if self.random_weighting not in RANDOM_WEIGHTINGS:
            raise InputError(f"unknown random weighting {self.random_weighting!r}; "
                             f"choose one of {', '.join(RANDOM_WEIGHTINGS)}")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the losses (method.md §5, §6).

    ``alpha``: hardness, ``gamma = exp(-alpha / Jbar_m)``. ``beta``: synthetic weight
    ``1 - exp(-beta / Jbar_gen)``. ``J_gen = 0.5 * (softmax_weight * J_soft + w_dot * J_sim +
    w_div * J_div)`` (``softmax_weight`` is ``S``). ``cls_weight``: factor of ``J_cls``.
    """

    alpha: float = 5.0
    beta: float = 20.0
    softmax_weight: float = 20.0
    w_dot: float = 20.0
    w_div: float = 60.0
    cls_weight: float = 10.0


@dataclass(frozen=True)
class StepConfig:
    """One training iteration (method.md §6): the loss weights, gradient clipping by value
    (``grad_clip``) and the generator ``mode``."""

    loss_weights: LossWeights = field(default_factory=LossWeights)
    grad_clip: float = 10.0
    mode: GeneratorMode = "gca"

    def __post_init__(self) -> None:
        if self.mode not in GENERATOR_MODES:
            raise InputError(f"unknown generator mode {self.mode!r}; choose one of {', '.join(GENERATOR_MODES)}")
