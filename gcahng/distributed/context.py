"""What the training step needs to know about the other processes of a distributed run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gcahng.choices import GRAPH_SCOPES, GraphScope
from gcahng.errors import InputError


@dataclass(frozen=True)
class DistContext:
    """One rank's view of a run over ``world_size`` processes.

    Each rank holds a disjoint slice of the global ``C x m`` batch: ``C / world_size`` class
    slots times ``m`` images, chunk-major on its own (rank ``r`` has global class slots
    ``r*C_local .. (r+1)*C_local - 1``), so the ranks' batches concatenated per chunk give the
    global chunk-major batch.

    Attributes:
        rank: this process's rank in ``group`` (0-based).
        world_size: number of processes in ``group``.
        group: the ``torch.distributed`` process group (``None``: the default group).
        graph_scope: ``global``: one batch graph over all ranks (the method); ``local``: one
            independent graph per rank.
    """

    rank: int
    world_size: int
    group: Any = None
    graph_scope: GraphScope = "global"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise InputError(f"rank {self.rank} is not in a world of {self.world_size} processes")
        if self.graph_scope not in GRAPH_SCOPES:
            raise InputError(f"unknown graph_scope {self.graph_scope!r}; choose one of {', '.join(GRAPH_SCOPES)}")

    @property
    def is_global(self) -> bool:
        """True when the graph spans all ranks and there is more than one."""
        return self.graph_scope == "global" and self.world_size > 1
