"""NMI between labels and k-means clusters of the embeddings."""
from __future__ import annotations

import faiss
import numpy as np
from sklearn.metrics import normalized_mutual_info_score

_KMEANS_ITERATIONS = 25


def clustering_nmi(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """NMI in [0, 1] of ``labels`` (N,) against k-means on ``embeddings`` (N, D) float32.

    k-means (faiss, seeded, all points used for training) with as many clusters as distinct
    labels; each point goes to its nearest centroid. Costs about
    N x classes x D x 25 multiply-adds (minutes on SOP).
    """
    num_clusters = len(np.unique(labels))
    kmeans = faiss.Kmeans(
        embeddings.shape[1],
        num_clusters,
        niter=_KMEANS_ITERATIONS,
        seed=seed,
        min_points_per_centroid=1,
        max_points_per_centroid=len(embeddings),
        verbose=False,
    )
    kmeans.train(embeddings)
    _, assignment = kmeans.index.search(embeddings, 1)
    return float(normalized_mutual_info_score(labels, assignment[:, 0]))
