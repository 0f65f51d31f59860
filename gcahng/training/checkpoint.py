"""Training checkpoints: written atomically, read with ``torch.load(..., weights_only=True)``.

A checkpoint is the dict :mod:`gcahng.retrieval.checkpoint` reads (``format``, ``version``,
``model_spec``, ``model``) plus the training state under other keys: ``generator``,
``metric_loss``, ``optimizers`` and ``schedulers`` (by name), ``step`` (running means and
CACAI's random generator), ``epoch`` (epochs completed), ``best`` (selection state),
``config`` (the run's :class:`~gcahng.config.TrainConfig` as a dict) and ``metrics`` (the
last evaluation, when there was one). ``best.pt`` holds the same but for the optimiser and
schedule states, which only resuming needs.

Writes go to a temporary file in the same folder, are flushed and fsync'ed, then renamed
over the target, so a process killed at any moment leaves either the old or the new
checkpoint, never a torn one.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from gcahng.errors import CheckpointError
from gcahng.models import EmbeddingModel, load_embedding_model, reference_model_spec
from gcahng.models.state_dicts import extract_state_dict
from gcahng.retrieval.checkpoint import CHECKPOINT_FORMAT, SUPPORTED_VERSIONS

CHECKPOINT_VERSION = 1
TRAINING_KEYS = ("generator", "metric_loss", "optimizers", "schedulers", "step", "epoch", "best", "config")
#: Fault-injection hook for the crash tests: seconds to sleep between writing the temporary
#: file and renaming it (a process killed then must leave the previous checkpoint intact).
WRITE_DELAY_ENV = "GCAHNG_CHECKPOINT_WRITE_DELAY"
TEMP_MARKER = ".tmp-"


def atomic_save(payload: dict[str, Any], path: str | Path) -> None:
    """``torch.save(payload)`` to ``path`` through a temporary file, flush, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}{TEMP_MARKER}{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        delay = float(os.environ.get(WRITE_DELAY_ENV, "0") or 0)
        if delay > 0:
            time.sleep(delay)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporary files a killed writer left in ``folder``; returns how many."""
    stale = [p for p in Path(folder).glob(f".*{TEMP_MARKER}*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many unrelated types for a bad file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint with the full training state (``last.pt``), checked for the keys resuming needs."""
    path = Path(path).expanduser()
    payload = _load(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gcahng checkpoint")
    if payload.get("version") not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')!r}; "
                              f"this gcahng reads versions {SUPPORTED_VERSIONS}")
    missing = [k for k in ("model_spec", "model", *TRAINING_KEYS) if k not in payload]
    if missing:
        raise CheckpointError(f"{path} cannot resume a run: it lacks {', '.join(missing)}")
    epoch, best = payload["epoch"], payload["best"]
    if type(epoch) is not int or epoch < 0:
        raise CheckpointError(f"{path}: 'epoch' must be a non-negative integer (epochs completed), got {epoch!r}")
    if not isinstance(best, dict) or not {"score", "epoch"} <= set(best):
        raise CheckpointError(f"{path}: 'best' must be a mapping with 'score' and 'epoch', got {best!r}")
    if not isinstance(payload["config"], dict):
        raise CheckpointError(f"{path}: 'config' must be a mapping, got {type(payload['config']).__name__}")
    return payload


def load_for_evaluation(path: str | Path) -> tuple[EmbeddingModel, dict[str, Any] | None]:
    """The embedding network in ``path`` (eval mode, CPU) and the run's config when it is ours.

    Accepts our checkpoints and the authors' released files (full model or metric model only,
    optionally under ``"state_dict"``/``"model"``, with or without ``module.``), whose
    backbone and head map onto our networks (see :mod:`gcahng.models.reference`).
    """
    path = Path(path).expanduser()
    payload = _load(path)
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        if payload.get("version") not in SUPPORTED_VERSIONS:
            raise CheckpointError(f"{path} has checkpoint version {payload.get('version')!r}; "
                                  f"this gcahng reads versions {SUPPORTED_VERSIONS}")
        if not isinstance(payload.get("model_spec"), dict) or not isinstance(payload.get("model"), dict):
            raise CheckpointError(f"{path} lacks the embedding model ('model_spec' and 'model')")
        model = load_embedding_model(payload["model_spec"], payload["model"], source=str(path))
        config = payload.get("config")
        return model, config if isinstance(config, dict) else None
    state_dict = extract_state_dict(payload, source=str(path))
    spec = reference_model_spec(state_dict)
    return load_embedding_model(spec, state_dict, source=f"released checkpoint {path}"), None
