"""Retrieval: embed images with a trained model, index a gallery, search it.

    embedder = gcahng.retrieval.load("best.pt")            # gcahng.load
    index = gcahng.retrieval.Index.load("gallery_index")   # gcahng.Index
    for hit in index.query(["query.jpg"], k=5, embedder=embedder)[0]:
        print(hit.rank, f"{hit.score:.3f}", hit.path)

Names are imported on first use, so that searching an index with an ONNX model
(``Index.load(...).query(...)``) imports neither torch nor torchvision.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "InferenceCheckpoint": "gcahng.formats.checkpoint",
    "checkpoint_fingerprint": "gcahng.formats.checkpoint",
    "read_checkpoint": "gcahng.formats.checkpoint",
    "Embedder": "gcahng.retrieval.embedder",
    "load": "gcahng.retrieval.embedder",
    "EmbeddedImages": "gcahng.retrieval.gallery",
    "embed_dataset": "gcahng.retrieval.gallery",
    "embed_files": "gcahng.retrieval.gallery",
    "Hit": "gcahng.retrieval.index",
    "Index": "gcahng.retrieval.index",
    "ModelRecord": "gcahng.retrieval.index",
    "SearchResults": "gcahng.retrieval.index",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gcahng.retrieval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
