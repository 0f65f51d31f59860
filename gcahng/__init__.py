"""gcahng: Globally Correlation-Aware Hard Negative Generation for deep metric learning.

Heavy submodules are imported lazily so that ``import gcahng`` (and the CLI's start-up)
stays cheap; ``gcahng.HardNegativeGenerator`` and friends resolve on first access.
"""
from __future__ import annotations

import importlib
from typing import Any

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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gcahng' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
