"""Reading the embedding network out of a gcahng checkpoint, and the checkpoint's fingerprint.

A checkpoint is a ``torch.save`` dict with ``"format": "gcahng-checkpoint"``, ``"version"``,
``"model_spec"`` (``ModelSpec.to_dict()``) and ``"model"`` (the embedding network's state
dict); anything else in it (optimisers, generator, config, epoch) is ignored here.

The fingerprint identifies the *model*, not the file: it hashes the model spec and every
tensor of the state dict (name, dtype, shape, bytes), so re-saving the same weights, or
saving them next to different optimiser states, keeps the fingerprint. An index records
the fingerprint of the model that embedded its gallery, and searching it with any other
model is refused.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gcahng.errors import CheckpointError

CHECKPOINT_FORMAT = "gcahng-checkpoint"
SUPPORTED_VERSIONS = (1,)


@dataclass(frozen=True)
class InferenceCheckpoint:
    """The parts of a checkpoint that inference needs."""

    path: Path
    model_spec: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    fingerprint: str


def checkpoint_fingerprint(model_spec: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> str:
    """A 32-hex-digit BLAKE2b digest of ``model_spec`` and the tensors of ``state_dict``.

    Key order does not matter; tensor values, dtypes and shapes do.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(dict(model_spec), sort_keys=True, default=str).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"state dict entry {name!r} is a {type(tensor).__name__}, not a tensor")
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"\0{name}\0{flat.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()


def _torch_load(path: Path) -> Any:
    try:
        # mmap: only the tensors that are used get read (optimiser states are skipped).
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | Path) -> InferenceCheckpoint:
    """Load the model spec and weights of the checkpoint at ``path`` (on the CPU).

    Raises :class:`CheckpointError` naming the file when it is missing, unreadable, not a
    gcahng checkpoint, of an unsupported version, or lacks the model.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = _torch_load(path)
    except Exception as err:  # torch raises many unrelated types for a bad file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a gcahng checkpoint (expected a dict with 'format': '{CHECKPOINT_FORMAT}')"
        )
    version = payload.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint version {version!r}; this gcahng reads versions {SUPPORTED_VERSIONS}"
        )
    spec, state = payload.get("model_spec"), payload.get("model")
    if not isinstance(spec, dict) or not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path} lacks the embedding model ('model_spec' dict and 'model' state dict)")
    state_dict = dict(state)
    return InferenceCheckpoint(
        path=path.resolve(),
        model_spec=spec,
        state_dict=state_dict,
        fingerprint=checkpoint_fingerprint(spec, state_dict),
    )
