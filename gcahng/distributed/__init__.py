"""Training on several processes: one batch graph over all ranks (issue 14)."""
from gcahng.distributed.context import DistContext

__all__ = ["DistContext"]
