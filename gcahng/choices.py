"""The fixed choices of a run, each stated once as a ``Literal`` (no torch imported here).

The tuples (``GENERATOR_MODES``, ...) are derived with :func:`typing.get_args`, for click
options and error messages; :class:`~gcahng.config.TrainConfig` checks its fields against
the ``Literal`` types themselves.
"""
from __future__ import annotations

from typing import Literal, get_args

#: ``gca``: the method. ``hdml``: CACAI with ``lambda = 1`` and no graph network (the
#: hardness-aware baseline). ``none``: the metric loss alone.
GeneratorMode = Literal["gca", "hdml", "none"]
#: CACAI's mixing weights: ``shared`` (the reference: one draw per chunk pair, shared by the
#: whole batch) or ``per-pair`` (one per anchor and negative class).
RandomWeighting = Literal["shared", "per-pair"]
#: Training classes counted once (``none``), in 4 rotations (``rot90``) or also mirrored (``dihedral``).
ClassAugmentation = Literal["none", "rot90", "dihedral"]
#: Where ``best.pt`` is chosen: a held-out validation split, the test split, or the last epoch.
Selection = Literal["val", "test", "last"]
#: The score compared for model selection.
SelectionMetric = Literal["recall@1", "map@r"]
#: Under torchrun: ``global``, one batch graph over the whole global batch of all ranks (the
#: method; the default); ``local``, one independent graph per rank over its own slice (cheaper).
GraphScope = Literal["global", "local"]

GENERATOR_MODES: tuple[str, ...] = get_args(GeneratorMode)
RANDOM_WEIGHTINGS: tuple[str, ...] = get_args(RandomWeighting)
CLASS_AUGMENTATIONS: tuple[str, ...] = get_args(ClassAugmentation)
SELECTIONS: tuple[str, ...] = get_args(Selection)
SELECTION_METRICS: tuple[str, ...] = get_args(SelectionMetric)
GRAPH_SCOPES: tuple[str, ...] = get_args(GraphScope)
