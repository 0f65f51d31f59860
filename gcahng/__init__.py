"""gcahng: Globally Correlation-Aware Hard Negative Generation for deep metric learning.

Heavy submodules are imported lazily so that ``import gcahng`` (and the CLI's start-up)
stays cheap; ``gcahng.HardNegativeGenerator`` and friends resolve on first access.
"""
from __future__ import annotations

from gcahng._lazy import lazy_module_attributes

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "HardNegativeGenerator": "gcahng.generator",
    "GCL": "gcahng.graph",
    "build_batch_graph": "gcahng.graph",
    "cacai": "gcahng.cacai",
    "TrainingStep": "gcahng.training",
    "load": "gcahng.retrieval",
    "Index": "gcahng.retrieval",
    "create_embedding_model": "gcahng.models",
    "load_embedding_model": "gcahng.models",
    "ModelSpec": "gcahng.models",
    "create_dataset": "gcahng.data",
    "evaluate_leave_one_out": "gcahng.evaluation",
    "evaluate_query_gallery": "gcahng.evaluation",
    "RetrievalMetrics": "gcahng.evaluation",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_module_attributes(__name__, _LAZY)
