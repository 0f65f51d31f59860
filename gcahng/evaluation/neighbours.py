"""Exact k-nearest-neighbour lists by inner product, in query chunks, with ties broken by index.

faiss's exact inner-product search does the work (``faiss.knn``: the brute-force kernel
behind ``IndexFlatIP``, run on the gallery array in place instead of a copy held by an
index). This module adds what the metrics need on top of it: the query excluded from its
own list by index (leave-one-out), a deterministic order among equal scores (smaller
gallery index first), and bounded memory (queries are
searched ``chunk_size`` at a time, so only one chunk's lists exist at once).
"""
from __future__ import annotations

from collections.abc import Iterator

import faiss
import numpy as np

# Default memory budget for one chunk's neighbour lists (float32 scores + int64 ids), bytes.
_CHUNK_BYTES = 64 * 2**20
_MAX_CHUNK_ROWS = 4096
# Memory budget for the full score rows re-ranked when a tie straddles the end of a list, bytes.
_RERANK_BYTES = 64 * 2**20


def default_chunk_size(k: int) -> int:
    """Query rows per chunk so that one chunk's lists of ``k`` neighbours take about 64 MiB."""
    return int(max(1, min(_MAX_CHUNK_ROWS, _CHUNK_BYTES // (12 * (k + 2)))))


def nearest_neighbours(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    *,
    leave_one_out: bool,
    chunk_size: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(start, ids)`` per chunk of queries, in order.

    ``queries`` (Q, D) and ``gallery`` (G, D) are float32 with unit rows. ``ids`` (rows, k')
    int64 holds, for queries ``start .. start + rows - 1``, the gallery indices of their
    ``k' = min(k, G - leave_one_out)`` nearest items by descending inner product, equal
    scores ordered by ascending index. With ``leave_one_out`` (queries is gallery), query
    ``i`` never appears in its own list.
    """
    num_candidates = len(gallery) - int(leave_one_out)
    k = min(k, num_candidates)
    if k < 1:
        return
    # One column beyond k shows whether a run of equal scores is cut by the end of the list.
    extra = int(k < num_candidates)
    search_k = k + extra + int(leave_one_out)
    rows_per_chunk = chunk_size or default_chunk_size(search_k)
    for start in range(0, len(queries), rows_per_chunk):
        chunk = queries[start : start + rows_per_chunk]
        scores, ids = faiss.knn(chunk, gallery, search_k, metric=faiss.METRIC_INNER_PRODUCT)
        if leave_one_out:
            scores, ids = _without_self(scores, ids, np.arange(start, start + len(chunk)))
        _order_ties_by_index(scores, ids)
        if extra:
            cut = np.flatnonzero(scores[:, k - 1] == scores[:, k])
            if len(cut):
                ids[cut, :k] = _exact_lists(chunk[cut], gallery, k, start + cut if leave_one_out else None)
        yield start, ids[:, :k]


def _without_self(
    scores: np.ndarray, ids: np.ndarray, self_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drops from each row the column holding the query's own index, or the last column if absent."""
    drop = ids == self_ids[:, None]
    drop[~drop.any(axis=1), -1] = True
    keep = ~drop
    width = ids.shape[1] - 1
    return scores[keep].reshape(-1, width), ids[keep].reshape(-1, width)


def _order_ties_by_index(scores: np.ndarray, ids: np.ndarray) -> None:
    """Reorders in place, within runs of equal scores, each row's ids ascending.

    faiss returns each row sorted by descending score; only the order among equal
    scores is left unspecified, so only rows that contain such a run are re-sorted.
    """
    tied_rows = np.flatnonzero((scores[:, 1:] == scores[:, :-1]).any(axis=1))
    for row in tied_rows:
        order = np.lexsort((ids[row], -scores[row]))
        ids[row] = ids[row, order]
        scores[row] = scores[row, order]


def _exact_lists(
    queries: np.ndarray, gallery: np.ndarray, k: int, self_ids: np.ndarray | None
) -> np.ndarray:
    """(Q, k) top-k gallery ids from full score rows: descending score, then ascending index.

    Used for the rare rows where equal scores straddle position k, so that faiss's
    arbitrary choice among them cannot decide which items make the list.
    """
    out = np.empty((len(queries), k), dtype=np.int64)
    rows = max(1, _RERANK_BYTES // (8 * len(gallery)))
    for start in range(0, len(queries), rows):
        block = queries[start : start + rows] @ gallery.T
        if self_ids is not None:
            block[np.arange(len(block)), self_ids[start : start + rows]] = -np.inf
        # a stable sort on the negated scores keeps equal scores in index order
        out[start : start + rows] = np.argsort(-block, axis=1, kind="stable")[:, :k]
    return out
