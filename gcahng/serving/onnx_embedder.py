"""``OnnxEmbedder``: embed images with an exported gcahng ONNX model on onnxruntime, without PyTorch.

    embedder = OnnxEmbedder("model.onnx")
    vectors = embedder.embed(["a.jpg"])        # (1, D) float32, unit rows

It has the interface :class:`gcahng.retrieval.Index` needs (``embed``, ``embed_batch``,
``transform``, ``embedding_dim``, ``fingerprint``, ``source_fingerprint``, ``kind``, ``path``).
One session serves every caller: onnxruntime's ``run`` is thread-safe.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gcahng.data.images import load_rgb
from gcahng.errors import CheckpointError, InputError
from gcahng.preprocess import TestPreprocess
from gcahng.serving.onnx_format import INPUT_NAME, ONNX_FORMAT, OUTPUT_NAME, PREFIX, file_sha256

ImageLike = str | Path | Image.Image


def _session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise CheckpointError(f"reading {path} needs onnxruntime: pip install 'gcahng[serve]'") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # no busy-waiting threads between runs: they cost other processes' CPU on a shared machine
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise CheckpointError(f"cannot load ONNX model {path}: {type(err).__name__}: {err}") from err


class OnnxEmbedder:
    """An exported model on onnxruntime with the preprocessing its metadata describes.

    ``fingerprint`` is the file's SHA-256; ``source_fingerprint`` the fingerprint of the
    checkpoint it was exported from. ``threads``: onnxruntime intra-op threads (0: its default).
    """

    kind = "onnx"

    def __init__(self, path: str | Path, *, threads: int = 0) -> None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise CheckpointError(f"ONNX model not found: {path}")
        self.path = path.resolve()
        self.session = _session(self.path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(PREFIX + "format") != ONNX_FORMAT:
            raise CheckpointError(f"{path} is not a gcahng ONNX model (no '{PREFIX}format' metadata); "
                                  "export one with `gcahng export`")
        try:
            self.embedding_dim = int(meta[PREFIX + "embedding_dim"])
            self.transform = TestPreprocess.from_dict(json.loads(meta[PREFIX + "preprocess"]))
            self.model_spec: dict[str, Any] = json.loads(meta[PREFIX + "model_spec"])
            self.source_fingerprint: str = meta[PREFIX + "source_fingerprint"]
        except (KeyError, ValueError, InputError) as err:
            raise CheckpointError(f"{path} has malformed gcahng metadata: {err}") from err
        side = self.transform.image_size
        shape = tuple(self.session.get_inputs()[0].shape[2:])
        if any(isinstance(n, int) and n != side for n in shape):
            raise CheckpointError(f"{path} has malformed gcahng metadata: its preprocessing crops {side} x {side} "
                                  f"pixels but the network takes {' x '.join(map(str, shape))}")
        self.metadata = {key.removeprefix(PREFIX): value for key, value in meta.items() if key.startswith(PREFIX)}
        self.fingerprint = file_sha256(self.path)

    def preprocess(self, image: ImageLike) -> np.ndarray:
        """One image (path or PIL image) as the model's (3, H, W) float32 input."""
        if isinstance(image, Image.Image):
            return self.transform(image.convert("RGB"))
        if isinstance(image, (str, Path)):
            return self.transform(load_rgb(image))
        raise InputError(f"expected an image path or a PIL image, got {type(image).__name__}")

    def embed_batch(self, batch: Any) -> np.ndarray:
        """Embeddings (B, D) float32, unit rows, of preprocessed images (B, 3, H, W) (numpy or torch)."""
        batch = np.ascontiguousarray(np.asarray(batch), dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise InputError(f"expected preprocessed images of shape (B, 3, H, W), got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    def embed(self, images_or_paths: Sequence[ImageLike] | ImageLike, batch_size: int = 32) -> np.ndarray:
        """Embeddings (N, D) float32, unit rows, of image paths or PIL images (one image: (1, D))."""
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(images_or_paths, (str, Path, Image.Image)):
            images_or_paths = [images_or_paths]
        items = list(images_or_paths)
        out = [np.zeros((0, self.embedding_dim), np.float32)]
        for start in range(0, len(items), batch_size):
            out.append(self.embed_batch(np.stack([self.preprocess(x) for x in items[start : start + batch_size]])))
        return np.concatenate(out)
