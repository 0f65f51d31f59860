"""Recall@K, MAP@R and R-Precision (and optionally NMI) from embeddings and labels."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gcahng.errors import InputError
from gcahng.evaluation.clustering import clustering_nmi
from gcahng.evaluation.inputs import check_chunk_size, integer_labels, normalized_embeddings, recall_ks
from gcahng.evaluation.neighbours import nearest_neighbours
from gcahng.evaluation.result import RetrievalMetrics


def evaluate_leave_one_out(
    embeddings: Any,
    labels: Any,
    ks: Sequence[int] = (1, 2, 4, 8),
    *,
    compute_nmi: bool = False,
    chunk_size: int | None = None,
    seed: int = 0,
) -> RetrievalMetrics:
    """Every item queries all the others (itself excluded by index), as for CUB, Cars and SOP.

    ``embeddings`` (N, D) float and ``labels`` (N,) int, numpy or torch. Ranking is by cosine
    similarity, ties by ascending index. Recall@K counts every query (one alone in its class
    is a miss). ``ks``: the K of Recall@K (1 is always added).
    ``compute_nmi`` clusters the embeddings with k-means (one cluster per label, seeded by
    ``seed``). ``chunk_size``: queries searched at once (default: about 64 MiB of lists).
    """
    x = normalized_embeddings(embeddings, "embeddings")
    y = integer_labels(labels, "labels", len(x), "embeddings")
    return _evaluate(x, y, x, y, ks, leave_one_out=True, compute_nmi=compute_nmi, chunk_size=chunk_size, seed=seed)


def evaluate_query_gallery(
    query_embeddings: Any,
    query_labels: Any,
    gallery_embeddings: Any,
    gallery_labels: Any,
    ks: Sequence[int] = (1, 10, 20, 30, 40, 50),
    *,
    compute_nmi: bool = False,
    chunk_size: int | None = None,
    seed: int = 0,
) -> RetrievalMetrics:
    """Each query (Q, D) searches the separate gallery (G, D) only, as for In-Shop.

    Same conventions as :func:`evaluate_leave_one_out`; R is the number of gallery items
    with the query's label, and NMI clusters the query embeddings. A query whose label has
    no gallery item (an In-Shop item without gallery images) cannot be found, so it is left
    out of Recall@K too instead of counting as a miss; the result counts those queries.
    """
    q = normalized_embeddings(query_embeddings, "query_embeddings")
    qy = integer_labels(query_labels, "query_labels", len(q), "query_embeddings")
    g = normalized_embeddings(gallery_embeddings, "gallery_embeddings")
    gy = integer_labels(gallery_labels, "gallery_labels", len(g), "gallery_embeddings")
    if q.shape[1] != g.shape[1]:
        raise InputError(
            f"query_embeddings have dimension {q.shape[1]} but gallery_embeddings have {g.shape[1]}; they must match"
        )
    return _evaluate(q, qy, g, gy, ks, leave_one_out=False, compute_nmi=compute_nmi, chunk_size=chunk_size, seed=seed)


def _evaluate(
    queries: np.ndarray,
    query_labels: np.ndarray,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    ks: Sequence[int],
    *,
    leave_one_out: bool,
    compute_nmi: bool,
    chunk_size: int | None,
    seed: int,
) -> RetrievalMetrics:
    ks = recall_ks(ks)
    check_chunk_size(chunk_size)
    relevant = _num_relevant(query_labels, gallery_labels, leave_one_out)
    if not relevant.any():
        raise InputError(
            "no query has another item with its label in the gallery, so no retrieval metric is defined; "
            "check that the labels are per class and not per image"
        )
    depth = max(ks[-1], int(relevant.max()))
    recall_hits = dict.fromkeys(ks, 0)
    ap_sum = 0.0
    rp_sum = 0.0
    for start, ids in nearest_neighbours(queries, gallery, depth, leave_one_out=leave_one_out, chunk_size=chunk_size):
        rows = slice(start, start + len(ids))
        matches = gallery_labels[ids] == query_labels[rows, None]  # (rows, depth) bool
        first_match = np.where(matches.any(axis=1), matches.argmax(axis=1), np.iinfo(np.int64).max)
        for k in ks:
            recall_hits[k] += int((first_match < k).sum())
        ap, rp = _precision_at_r(matches, relevant[rows])
        ap_sum += ap
        rp_sum += rp
    num_queries = len(queries)
    num_with_relevant = int((relevant > 0).sum())
    left_out_of_recall = 0 if leave_one_out else num_queries - num_with_relevant
    return RetrievalMetrics(
        recall={k: hits / (num_queries - left_out_of_recall) for k, hits in recall_hits.items()},
        map_at_r=ap_sum / num_with_relevant,
        r_precision=rp_sum / num_with_relevant,
        nmi=clustering_nmi(queries, query_labels, seed=seed) if compute_nmi else None,
        num_queries=num_queries,
        num_queries_without_relevant=num_queries - num_with_relevant,
        num_queries_left_out_of_recall=left_out_of_recall,
    )


def _num_relevant(query_labels: np.ndarray, gallery_labels: np.ndarray, leave_one_out: bool) -> np.ndarray:
    """R per query: gallery items with its label, itself not counted in leave-one-out."""
    classes, gallery_counts = np.unique(gallery_labels, return_counts=True)
    position = np.searchsorted(classes, query_labels).clip(max=len(classes) - 1)
    counts = np.where(classes[position] == query_labels, gallery_counts[position], 0)
    return counts - int(leave_one_out)


def _precision_at_r(matches: np.ndarray, relevant: np.ndarray) -> tuple[float, float]:
    """Sums over queries with R > 0 of AP@R and R-Precision.

    ``matches`` (Q, depth) marks same-label items in each ranked list; ``relevant`` (Q,) is R.
    AP@R = (1/R) * sum over ranks i <= R holding a same-label item of (same-label items in
    the first i) / i; R-Precision = (same-label items in the first R) / R.
    """
    width = int(relevant.max(initial=0))
    if width == 0:
        return 0.0, 0.0
    within_r = matches[:, :width] & (np.arange(width) < relevant[:, None])
    found = np.cumsum(within_r, axis=1)
    precision = np.where(within_r, found / np.arange(1, width + 1), 0.0)
    has_relevant = relevant > 0
    r = relevant[has_relevant]
    ap = precision[has_relevant].sum(axis=1) / r
    rp = found[has_relevant, -1] / r
    return float(ap.sum()), float(rp.sum())
