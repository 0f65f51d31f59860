"""Scoring an embedding network on a dataset split with the dataset's protocol."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gcahng.data import ImageDataset
from gcahng.distributed.runtime import SINGLE, Runtime, broadcast, gather_to_main, shard
from gcahng.errors import DataError
from gcahng.evaluation import PROTOCOLS, Protocol, RetrievalMetrics, evaluate_leave_one_out, evaluate_query_gallery
from gcahng.formats.checkpoint import inference_view, is_ours, read_payload, released_view, saved_config
from gcahng.models import EmbeddingModel, load_embedding_model
from gcahng.preprocess import TestPreprocess
from gcahng.retrieval import Embedder, embed_dataset
from gcahng.retrieval.gallery import skipped_summary

logger = logging.getLogger(__name__)

DEFAULT_PROTOCOL = Protocol("leave_one_out", (1, 2, 4, 8))


def protocol_for(dataset: str) -> Protocol:
    """The benchmark protocol of ``dataset``; leave-one-out at K = 1, 2, 4, 8 for others."""
    return PROTOCOLS.get(dataset, DEFAULT_PROTOCOL)


def embed_split(
    model: nn.Module, dataset: ImageDataset, *, device: torch.device, batch_size: int = 128, workers: int = 0,
    runtime: Runtime = SINGLE,
) -> tuple[np.ndarray, np.ndarray] | None:
    """L2-normalised embeddings (N', D) float32 and labels (N',) of the readable images of
    ``dataset`` (unreadable ones are skipped with a warning). Leaves ``model`` in eval mode.

    Over ``runtime``'s ranks: rank ``r`` embeds batches ``r, r + W, ...`` (the same batches
    one process embeds, so the same numbers) and rank 0 gets all, in dataset order; the
    other ranks get ``None``.
    """
    embedder = Embedder(model, TestPreprocess.for_spec(model.spec), fingerprint="in-training", device=device)
    indices = shard(range(len(dataset)), runtime, batch_size)
    embedded = embed_dataset(embedder, dataset, indices, batch_size=batch_size, workers=workers, progress=False)
    kept = [indices[k] for k in embedded.kept]
    pieces = gather_to_main(runtime, (kept, embedded.embeddings, list(embedded.skipped)))
    if pieces is None:
        return None
    kept = [i for piece in pieces for i in piece[0]]
    skipped = [item for piece in pieces for item in piece[2]]
    if skipped:
        logger.warning("evaluation of %s/%s %s", dataset.name, dataset.split, skipped_summary(skipped))
    if not kept:
        raise DataError(f"no image of {dataset.name}/{dataset.split} could be read")
    order = np.argsort(kept, kind="stable")
    embeddings = np.concatenate([piece[1] for piece in pieces])[order]
    return embeddings, dataset.labels[np.asarray(kept)[order]]


def evaluate_split(
    model: nn.Module,
    datasets: Mapping[str, ImageDataset],
    split: str,
    *,
    dataset_name: str,
    device: torch.device,
    batch_size: int = 128,
    workers: int = 0,
    runtime: Runtime = SINGLE,
) -> RetrievalMetrics:
    """Metrics of ``model`` on ``split`` of ``datasets`` (split name -> dataset).

    ``test`` follows the dataset's protocol: leave-one-out, or for ``query_gallery``
    datasets (In-Shop) the ``query`` split searching the ``gallery`` split. Any other split
    (``val``) is scored leave-one-out with the protocol's K. Over ``runtime``'s ranks the
    embedding is sharded (:func:`embed_split`), rank 0 computes the metrics and every rank
    returns them.
    """
    protocol = protocol_for(dataset_name)
    options = {"device": device, "batch_size": batch_size, "workers": workers, "runtime": runtime}
    if split == "test" and protocol.kind == "query_gallery":
        query = embed_split(model, datasets["query"], **options)
        gallery = embed_split(model, datasets["gallery"], **options)
        metrics = None if query is None or gallery is None else evaluate_query_gallery(*query, *gallery, protocol.ks)
    else:
        embedded = embed_split(model, datasets[split], **options)
        metrics = None if embedded is None else evaluate_leave_one_out(*embedded, protocol.ks)
    return broadcast(runtime, metrics)


def load_for_evaluation(path: str | Path) -> tuple[EmbeddingModel, dict[str, Any] | None]:
    """The embedding network in ``path`` (eval mode, CPU) and the run's config when it is ours.

    Accepts our checkpoints and the authors' released files (full model or metric model only,
    optionally under ``"state_dict"``/``"model"``, with or without ``module.``), whose
    backbone and head map onto our networks (see :mod:`gcahng.models.reference`).
    """
    path = Path(path).expanduser()
    payload = read_payload(path)
    if is_ours(payload):
        checkpoint = inference_view(payload, path)
        model = load_embedding_model(checkpoint.model_spec, checkpoint.state_dict, source=str(path))
        return model, saved_config(payload, path)
    spec, state_dict = released_view(payload, path)
    return load_embedding_model(spec, state_dict, source=f"released checkpoint {path}"), None
