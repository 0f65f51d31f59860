"""The checkpoint format: one writer (:func:`atomic_save`) and one reader (:func:`read_payload`,
with the views :func:`read_checkpoint` for inference and :func:`load_training_checkpoint` for
resuming), its version, validation and errors.

A checkpoint is a ``torch.save`` dict, read with ``torch.load(..., weights_only=True)``:

- ``format``: ``"gcahng-checkpoint"``; ``version``: :data:`CHECKPOINT_VERSION`;
- ``model_spec`` (``ModelSpec.to_dict()``) and ``model`` (the embedding network's state dict):
  all that inference needs;
- the training state (:data:`TRAINING_KEYS`): ``generator``, ``metric_loss``, ``step``
  (running means and CACAI's random generator), ``epoch`` (epochs completed), ``best``
  (selection state), ``config`` (the run's ``TrainConfig`` as a dict), ``metrics`` (the last
  evaluation or ``None``), and in ``last.pt`` only ``optimizers`` and ``schedulers``.

Writes go to a temporary file of a unique name in the same folder, are flushed and
fsync'ed, then renamed over the target, so a process killed at any moment leaves the old or
the new checkpoint, never a torn one.

Reading checks, before anything is built from it: the model spec (a valid ``ModelSpec``
whose ``embedding_dim`` is the row count of the head weight ``model.fc.1.weight``, and whose
image sizes are within the largest image the loaders read), every weight a finite tensor, and,
where a reader needs it, the ``config`` (every ``TrainConfig`` key, each valid). An authors'
released file is read by the same :func:`read_payload` and checked by :func:`released_view`.

The fingerprint identifies the *model*, not the file: it hashes the model spec and every
tensor of the state dict (name, dtype, shape, bytes), so re-saving the same weights keeps
it. An index records the fingerprint of the model that embedded its gallery.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gcahng.data.images import MAX_IMAGE_PIXELS
from gcahng.errors import CheckpointError, DiskFullError, InputError
from gcahng.formats.atomic import write_atomically
from gcahng.user_paths import describe, regular_file

if TYPE_CHECKING:
    from gcahng.models.spec import ModelSpec

CHECKPOINT_FORMAT = "gcahng-checkpoint"
CHECKPOINT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
TRAINING_KEYS = ("generator", "metric_loss", "optimizers", "schedulers", "step", "epoch", "best", "config")
#: Fault-injection hook for the crash tests: seconds to sleep between writing the temporary
#: file and renaming it (a process killed then must leave the previous checkpoint intact).
WRITE_DELAY_ENV = "GCAHNG_CHECKPOINT_WRITE_DELAY"
_ZIP_MAGIC, _PICKLE_MAGIC = b"PK", b"\x80"
HEAD_WEIGHT = "fc.1.weight"
"""The embedding head's Linear weight (D, F) in ``model`` (``EmbeddingModel.fc`` is BatchNorm1d -> Linear)."""
MAX_IMAGE_SIDE = math.isqrt(MAX_IMAGE_PIXELS)
"""Largest ``image_size`` / ``resize_size`` a checkpoint may ask for: the side of the largest image loaded."""


def training_payload(*, model_spec: dict[str, Any], model: dict, generator: dict, metric_loss: dict, step: dict,
                     epoch: int, best: Mapping[str, Any], config: dict[str, Any], metrics: dict | None,
                     optimizers: dict | None = None, schedulers: dict | None = None) -> dict[str, Any]:
    """The dict a run saves: ``last.pt`` with ``optimizers`` and ``schedulers``, ``best.pt`` without."""
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model_spec": model_spec, "model": model,
        "generator": generator, "metric_loss": metric_loss, "step": step, "epoch": epoch, "best": dict(best),
        "config": config, "metrics": metrics,
    }
    if optimizers is not None:
        payload["optimizers"], payload["schedulers"] = optimizers, schedulers
    return payload


def atomic_save(payload: dict[str, Any], path: str | Path) -> None:
    """``torch.save(payload)`` to ``path`` through :func:`~gcahng.formats.atomic.write_atomically`.

    A full disk raises :class:`CheckpointError` ``no space left on device writing PATH``; the
    previous file at ``path`` stays intact and the temporary file is removed. With the
    environment variable ``WRITE_DELAY_ENV`` set to seconds, the complete temporary waits that
    long before its rename (the crash tests kill the writer then).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        delay = float(os.environ.get(WRITE_DELAY_ENV, "0") or 0)
        if delay > 0:
            time.sleep(delay)

    try:
        write_atomically(path, write)
    except DiskFullError as err:
        raise CheckpointError(str(err)) from None


def read_payload(path: str | Path, *, mmap: bool = False) -> Any:
    """What ``torch.load(path, weights_only=True)`` returns, on the CPU; any problem is a
    :class:`CheckpointError` naming the file (missing, not a regular file, empty, not a
    PyTorch file, unreadable). ``mmap``: read only the tensors that are used."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {describe(path)}")
    regular_file(path, "checkpoint", CheckpointError)  # a FIFO would block open()
    shown = describe(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {shown}: {err.strerror}") from None
    if not head:
        raise CheckpointError(f"checkpoint {shown} is empty (0 bytes)")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC)):
        raise CheckpointError(f"{shown} is not a PyTorch checkpoint file")
    if head.startswith(_ZIP_MAGIC) and (damaged := _failing_crc(path)) is not None:
        raise CheckpointError(f"checkpoint {shown} is damaged: its entry {damaged} fails its CRC-32 check "
                              "(the file changed after it was written)")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as err:
            if not mmap or "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many unrelated types for a bad file
        if "weights_only" in str(err):  # torch's advice (weights_only=False) would run the file's code
            raise CheckpointError(f"cannot read checkpoint {shown}: it holds Python objects other than tensors "
                                  "and plain values, which are not loaded (that could run code)") from err
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "truncated or corrupt"
        raise CheckpointError(f"cannot read checkpoint {shown}: {type(err).__name__}: {reason}") from err


def _failing_crc(path: Path) -> str | None:
    """The first entry of the zip file ``path`` whose CRC-32 does not match, or None (also when the
    archive cannot be read as a whole: torch then names that problem)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
        return None


def _check_ours(payload: Any, path: Path) -> dict[str, Any]:
    """``payload`` as a gcahng checkpoint of a supported version, with its model."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a gcahng checkpoint (expected a dict with 'format': '{CHECKPOINT_FORMAT}')"
        )
    if payload.get("version") not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')!r}; "
                              f"this gcahng reads versions {SUPPORTED_VERSIONS}")
    spec, state = payload.get("model_spec"), payload.get("model")
    if not isinstance(spec, dict) or not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path} lacks the embedding model ('model_spec' dict and 'model' state dict)")
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: weight 'model.{name}' is a {type(value).__name__}, not a tensor")
    return payload


def _check_model(payload: dict[str, Any], path: Path) -> None:
    """The model spec fits the weights and every weight is finite (after :func:`_check_ours`)."""
    _check_spec(payload["model_spec"], payload["model"], path)
    _check_finite(payload["model"], path, "model.")


def _check_spec(spec: dict[str, Any], state: Mapping[str, torch.Tensor], path: Path) -> None:
    """``spec`` is a valid ``ModelSpec`` whose sizes fit the weights, so building it allocates no more
    than the file holds."""
    from gcahng.models.spec import ModelSpec

    try:
        parsed = ModelSpec.from_dict(spec)
    except (InputError, TypeError) as err:
        raise CheckpointError(f"{path}: model_spec: {err}") from None
    for name in ("image_size", "resize_size"):
        size = getattr(parsed, name)
        if size is not None and size > MAX_IMAGE_SIDE:
            raise CheckpointError(f"{path}: model_spec.{name} is {size}, more than the {MAX_IMAGE_SIDE} pixels of "
                                  "the largest image the loaders read")
    head = state.get(HEAD_WEIGHT)
    if head is None or head.ndim != 2:
        raise CheckpointError(f"{path} lacks the embedding head's weight 'model.{HEAD_WEIGHT}' (a (D, F) matrix)")
    if head.shape[0] != parsed.embedding_dim:
        raise CheckpointError(f"{path}: model_spec.embedding_dim is {parsed.embedding_dim} but the head weight "
                              f"'model.{HEAD_WEIGHT}' has {head.shape[0]} rows")


def _check_finite(state: Mapping[str, torch.Tensor], path: Path, prefix: str) -> None:
    """Every floating-point tensor of ``state`` is finite (a NaN weight makes every embedding NaN)."""
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: weight '{prefix}{name}' holds NaN or infinite values; the model is "
                                  "broken (did its training diverge?)")


def is_ours(payload: Any) -> bool:
    """Whether ``payload`` claims to be a gcahng checkpoint (else: perhaps a released file)."""
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint with the full training state (``last.pt``), checked for what resuming needs."""
    path = Path(path).expanduser()
    payload = _check_ours(read_payload(path), path)
    missing = [k for k in TRAINING_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path} cannot resume a run: it lacks {', '.join(missing)}")
    epoch, best = payload["epoch"], payload["best"]
    if type(epoch) is not int or epoch < 0:
        raise CheckpointError(f"{path}: 'epoch' must be a non-negative integer (epochs completed), got {epoch!r}")
    if not isinstance(best, dict) or not {"score", "epoch"} <= set(best):
        raise CheckpointError(f"{path}: 'best' must be a mapping with 'score' and 'epoch', got {best!r}")
    payload["config"] = saved_config(payload, path)
    _check_model(payload, path)
    return payload


#: ``TrainConfig`` keys added after checkpoints of this format were first written, each with the
#: value that reproduces what a run of before did (runs then computed every ordered edge).
KEYS_ADDED_LATER: dict[str, Any] = {"edge_dropout": "independent", "graph_scope": "global"}


def saved_config(payload: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The run's ``config`` in a gcahng checkpoint ``payload`` read from ``path``, or None when it has none.

    A run saves every ``TrainConfig`` key; a missing key (other than :data:`KEYS_ADDED_LATER`, which
    take their earlier behaviour) or an invalid value is an error naming the file.
    """
    from gcahng.config import FIELD_NAMES, config_from_dict

    config = payload.get("config")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' must be a mapping, got {type(config).__name__}")
    config = {**{k: v for k, v in KEYS_ADDED_LATER.items() if k not in config}, **config}
    missing = [key for key in FIELD_NAMES if key not in config]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise CheckpointError(f"{path}: 'config' lacks key(s) {', '.join(missing[:3])}{more}; it is not the "
                              "config of a gcahng run")
    config_from_dict(config, source=f"{path}: 'config'")
    return config


def released_view(payload: Any, path: Path) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    """The ``ModelSpec`` and state dict of an authors' released file (full or metric model) already read
    from ``path``: a state dict of tensors with a head and a registered backbone, every weight finite;
    problems raise :class:`CheckpointError` naming the file."""
    from gcahng.models.reference import reference_model_spec
    from gcahng.models.state_dicts import extract_state_dict

    state_dict = extract_state_dict(payload, source=str(path))
    try:
        spec = reference_model_spec(state_dict)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    _check_finite(state_dict, path, "")
    return spec, state_dict


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


def read_checkpoint(path: str | Path) -> InferenceCheckpoint:
    """The model spec and weights of the gcahng checkpoint at ``path`` (on the CPU, memory-mapped),
    with its fingerprint; problems raise :class:`CheckpointError` naming the file."""
    path = Path(path).expanduser()
    return inference_view(read_payload(path, mmap=True), path)


def inference_view(payload: Any, path: Path) -> InferenceCheckpoint:
    """The inference parts of a ``payload`` already read from ``path`` (checked as :func:`read_checkpoint` does)."""
    payload = _check_ours(payload, path)
    _check_model(payload, path)
    spec, state_dict = payload["model_spec"], dict(payload["model"])
    return InferenceCheckpoint(path=path.resolve(), model_spec=spec, state_dict=state_dict,
                               fingerprint=checkpoint_fingerprint(spec, state_dict))
