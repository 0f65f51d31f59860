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
    model: nn.Module, dataset: ImageDataset, *, device: torch.device, batch_size: int = 128, workers: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings (N', D) float32 and labels (N',) of the readable images of
    ``dataset`` (unreadable ones are skipped with a warning). Leaves ``model`` in eval mode."""
    embedder = Embedder(model, TestPreprocess.for_spec(model.spec), fingerprint="in-training", device=device)
    embedded = embed_dataset(embedder, dataset, batch_size=batch_size, workers=workers, progress=False)
    if embedded.skipped:
        logger.warning("evaluation of %s/%s %s", dataset.name, dataset.split, skipped_summary(embedded.skipped))
    if not embedded.kept:
        raise DataError(f"no image of {dataset.name}/{dataset.split} could be read")
    return embedded.embeddings, dataset.labels[embedded.kept]


def evaluate_split(
    model: nn.Module,
    datasets: Mapping[str, ImageDataset],
    split: str,
    *,
    dataset_name: str,
    device: torch.device,
    batch_size: int = 128,
    workers: int = 0,
) -> RetrievalMetrics:
    """Metrics of ``model`` on ``split`` of ``datasets`` (split name -> dataset).

    ``test`` follows the dataset's protocol: leave-one-out, or for ``query_gallery``
    datasets (In-Shop) the ``query`` split searching the ``gallery`` split. Any other split
    (``val``) is scored leave-one-out with the protocol's K.
    """
    protocol = protocol_for(dataset_name)
    options = {"device": device, "batch_size": batch_size, "workers": workers}
    if split == "test" and protocol.kind == "query_gallery":
        query, query_labels = embed_split(model, datasets["query"], **options)
        gallery, gallery_labels = embed_split(model, datasets["gallery"], **options)
        return evaluate_query_gallery(query, query_labels, gallery, gallery_labels, protocol.ks)
    embeddings, labels = embed_split(model, datasets[split], **options)
    return evaluate_leave_one_out(embeddings, labels, protocol.ks)


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
