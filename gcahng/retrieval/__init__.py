"""Retrieval: embed images with a trained model, index a gallery, search it.

    embedder = gcahng.retrieval.load("best.pt")            # gcahng.load
    index = gcahng.retrieval.Index.load("gallery_index")   # gcahng.Index
    for hit in index.query(["query.jpg"], k=5, embedder=embedder)[0]:
        print(hit.rank, f"{hit.score:.3f}", hit.path)
"""
from __future__ import annotations

from gcahng.retrieval.checkpoint import InferenceCheckpoint, checkpoint_fingerprint, read_checkpoint
from gcahng.retrieval.embedder import Embedder, load
from gcahng.retrieval.gallery import EmbeddedImages, embed_dataset, embed_files
from gcahng.retrieval.index import Hit, Index, ModelRecord, SearchResults

__all__ = [
    "Embedder",
    "EmbeddedImages",
    "Hit",
    "Index",
    "InferenceCheckpoint",
    "ModelRecord",
    "SearchResults",
    "checkpoint_fingerprint",
    "embed_dataset",
    "embed_files",
    "load",
    "read_checkpoint",
]
