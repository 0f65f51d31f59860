"""Building faiss indexes over L2-normalised embeddings, and measuring their recall.

Similarity is the inner product, which for L2-normalised embeddings is the cosine
similarity. ``flat`` is exact; ``hnsw`` and ``ivf`` trade recall for speed on galleries of
millions, so their recall against exact search is measured when they are built.
"""
from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

from gcahng.errors import InputError

INDEX_TYPES = ("flat", "hnsw", "ivf")


def default_params(index_type: str, num_items: int) -> dict[str, int]:
    """Build and search parameters of ``index_type`` for a gallery of ``num_items``."""
    if index_type == "flat":
        return {}
    if index_type == "hnsw":
        return {"M": 32, "ef_construction": 200, "ef_search": 128}
    if index_type == "ivf":
        # ~4 sqrt(N) lists, each trained on at least 39 points (faiss' own minimum).
        nlist = max(1, min(int(round(4 * math.sqrt(num_items))), num_items // 39))
        return {"nlist": nlist, "nprobe": min(nlist, max(8, nlist // 16))}
    raise InputError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")


def build_faiss_index(embeddings: np.ndarray, index_type: str, params: dict[str, int]) -> Any:
    """A faiss index of ``embeddings`` (N, D) float32 for inner-product search."""
    num, dim = embeddings.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["ef_construction"]
    elif index_type == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        index.train(embeddings)
    else:
        raise InputError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
    index.add(embeddings)
    apply_search_params(index, index_type, params)
    return index


def apply_search_params(index: Any, index_type: str, params: dict[str, int]) -> None:
    """Set the search-time knobs (``ef_search``, ``nprobe``) that ``params`` records."""
    if index_type == "hnsw":
        index.hnsw.efSearch = params["ef_search"]
    elif index_type == "ivf":
        index.nprobe = params["nprobe"]


def recall_against_exact(
    index: Any, embeddings: np.ndarray, *, k: int = 10, sample: int = 1000, seed: int = 0
) -> float:
    """Mean overlap of ``index``'s top-k with the exact top-k, over sampled gallery items as queries.

    Returns a fraction in [0, 1]; 1.0 means the approximate index found every true neighbour.
    """
    num = embeddings.shape[0]
    k = min(k, num)
    rows = np.random.default_rng(seed).choice(num, size=min(sample, num), replace=False)
    queries = np.ascontiguousarray(embeddings[rows])
    _, exact = faiss.knn(queries, embeddings, k, metric=faiss.METRIC_INNER_PRODUCT)
    _, approx = index.search(queries, k)
    hits = sum(len(np.intersect1d(e, a[a >= 0])) for e, a in zip(exact, approx, strict=False))
    return hits / (len(rows) * k)
