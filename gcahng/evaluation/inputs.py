"""Validation and conversion of the embeddings and labels handed to the evaluation."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gcahng.errors import InputError

_BLOCK_ROWS = 8192


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """A numpy view or copy of a numpy array, torch tensor (any device) or nested sequence."""
    if type(value).__module__.split(".")[0] == "torch":
        tensor = value.detach().cpu()
        if tensor.is_floating_point() and tensor.element_size() < 4:
            tensor = tensor.float()  # numpy has no bfloat16; float32 holds every half value exactly
        return tensor.numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be an array or tensor, got {type(value).__name__}: {err}") from None


def normalized_embeddings(value: Any, name: str) -> np.ndarray:
    """``value`` (N, D) as C-contiguous float32 rows of unit L2 norm.

    Raises :class:`InputError` for a wrong shape, a non-float dtype, a non-finite entry or a
    zero row, naming the first offending row.
    """
    array = _to_numpy(value, name)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name} must have shape (N, D) with N, D >= 1, got shape {tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name} must be floating point, got dtype {array.dtype}")
    out = np.empty(array.shape, dtype=np.float32)
    for start in range(0, len(array), _BLOCK_ROWS):  # float64 work in blocks keeps the extra memory small
        block = array[start : start + _BLOCK_ROWS].astype(np.float64)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            raise InputError(f"{name} has non-finite values (NaN or inf), first in row {row} of {len(array)}")
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        if not (norms > 0).all():
            row = start + int(np.flatnonzero(norms <= 0)[0])
            raise InputError(f"{name} row {row} is the zero vector, which has no direction to compare by cosine")
        out[start : start + len(block)] = block / norms[:, None]
    return out


def integer_labels(value: Any, name: str, expected_len: int, embeddings_name: str) -> np.ndarray:
    """``value`` as a 1-D int64 array of length ``expected_len``."""
    array = _to_numpy(value, name)
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {tuple(array.shape)}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise InputError(f"{name} must be integers, got dtype {array.dtype}")
    if len(array) != expected_len:
        raise InputError(
            f"{name} has {len(array)} entries but {embeddings_name} has {expected_len} rows; they must match"
        )
    return array.astype(np.int64, copy=False)


def recall_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Sorted distinct K values, always including 1 (Recall@1 is the primary metric)."""
    try:
        values = [int(k) for k in ks]
    except (TypeError, ValueError):
        raise InputError(f"ks must be a sequence of positive integers, got {ks!r}") from None
    if any(k < 1 or k != float(kk) for k, kk in zip(values, ks, strict=False)):
        raise InputError(f"ks must be positive integers, got {tuple(ks)!r}")
    return tuple(sorted(set(values) | {1}))


def check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
