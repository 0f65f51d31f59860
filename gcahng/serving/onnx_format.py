"""The metadata of an exported gcahng ONNX model, and the file's hash (no torch, no onnx needed).

An exported model maps ``images`` (B, 3, H, W) float32, preprocessed as
:class:`gcahng.preprocess.TestPreprocess` describes, to ``embeddings`` (B, D) float32 with
unit L2 norm. Its ``metadata_props`` hold these string keys:

- ``gcahng.format``: ``"gcahng-onnx-embedder"``; ``gcahng.version``: ``"1"``;
- ``gcahng.embedding_dim``: D;
- ``gcahng.preprocess``: JSON of ``TestPreprocess.to_dict()`` (resize, crop, scale, mean, std, RGB, NCHW);
- ``gcahng.model_spec``: JSON of the source checkpoint's ``ModelSpec.to_dict()``;
- ``gcahng.source_fingerprint``: the source checkpoint's fingerprint (``checkpoint_fingerprint``);
- ``gcahng.source_checkpoint``: the checkpoint's path when exported.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

ONNX_FORMAT = "gcahng-onnx-embedder"
ONNX_VERSION = "1"
INPUT_NAME, OUTPUT_NAME = "images", "embeddings"
KEYS = ("format", "version", "embedding_dim", "preprocess", "model_spec", "source_fingerprint", "source_checkpoint")
PREFIX = "gcahng."


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path`` (the fingerprint of an ONNX model in an index)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_onnx_path(path: str | Path) -> bool:
    """True when ``path`` names an ONNX model (by its ``.onnx`` ending)."""
    return Path(path).suffix.lower() == ".onnx"
