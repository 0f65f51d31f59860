"""Retrieval evaluation of embeddings: Recall@K, MAP@R, R-Precision and NMI under each benchmark's protocol.

    from gcahng.evaluation import PROTOCOLS, evaluate_leave_one_out
    metrics = evaluate_leave_one_out(embeddings, labels, PROTOCOLS["sop"].ks)
    print(metrics)          # the paper's table, in percent
    metrics.to_dict()       # {"recall@1": 0.79, ..., "map@r": ..., "r_precision": ..., "nmi": None, ...}

Search is exact (faiss inner-product search, as ``IndexFlatIP``, on L2-normalised float32:
cosine similarity), in query chunks of bounded memory, with equal scores ranked by ascending
index.
"""
from __future__ import annotations

from gcahng.evaluation.protocols import PROTOCOLS, Protocol
from gcahng.evaluation.result import RetrievalMetrics
from gcahng.evaluation.retrieval import evaluate_leave_one_out, evaluate_query_gallery

__all__ = ["PROTOCOLS", "Protocol", "RetrievalMetrics", "evaluate_leave_one_out", "evaluate_query_gallery"]
