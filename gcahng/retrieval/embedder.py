"""A trained embedding network, ready to turn images into L2-normalised embeddings.

    embedder = gcahng.load("runs/cub/best.pt")
    vectors = embedder.embed(["a.jpg", "b.jpg"])      # (2, D) float32, unit rows
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gcahng.errors import CheckpointError, InputError
from gcahng.formats.checkpoint import read_checkpoint
from gcahng.preprocess import TestPreprocess
from gcahng.retrieval.files import read_image

if TYPE_CHECKING:
    from gcahng.models.embedding import EmbeddingModel
    from gcahng.models.spec import ModelSpec

ImageLike = str | Path | Image.Image
FEW_IMAGES = 8


@contextmanager
def _one_thread_for(num_images: int) -> Iterator[None]:
    """torch on one thread while embedding fewer than ``FEW_IMAGES`` images.

    For a single image, intra-op threads save little when the machine is idle and cost a lot
    when it is busy: on a loaded 2-core machine one ResNet-50 forward took 2.6 s on 2 threads
    and 0.09 s on 1.
    """
    if num_images >= FEW_IMAGES or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Embedder:
    """An embedding network in eval mode with its test-time preprocessing.

    ``spec`` is the network's ``ModelSpec``; ``fingerprint`` identifies its weights (see
    :func:`gcahng.formats.checkpoint.checkpoint_fingerprint`).
    """

    def __init__(
        self,
        model: EmbeddingModel,
        transform: Callable[[Image.Image], np.ndarray],
        *,
        fingerprint: str,
        checkpoint: Path | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.transform = transform
        self.fingerprint = fingerprint
        self.checkpoint = checkpoint

    kind = "checkpoint"

    @property
    def path(self) -> Path | None:
        """The checkpoint file (the ``path`` of an index's model record)."""
        return self.checkpoint

    @property
    def source_fingerprint(self) -> str:
        """The checkpoint's fingerprint (an ONNX export of it carries the same)."""
        return self.fingerprint

    @property
    def model_spec(self) -> dict:
        return self.model.spec.to_dict()

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def embedding_dim(self) -> int:
        return int(self.model.spec.embedding_dim)

    def preprocess(self, image: ImageLike) -> torch.Tensor:
        """One image (path or PIL image) as the network's (3, H, W) input tensor.

        An unreadable file raises :class:`~gcahng.data.images.UnreadableImageError` naming it.
        """
        if isinstance(image, Image.Image):
            return torch.from_numpy(self.transform(image.convert("RGB")))
        if isinstance(image, (str, Path)):
            return torch.from_numpy(self.transform(read_image(image)))
        raise InputError(f"expected an image path or a PIL image, got {type(image).__name__}")

    @torch.inference_mode()
    def embed_batch(self, batch: torch.Tensor) -> np.ndarray:
        """Embeddings (B, D) float32, L2-normalised, of preprocessed images (B, 3, H, W)."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise InputError(f"expected preprocessed images of shape (B, 3, H, W), got {tuple(batch.shape)}")
        vectors = self.model(batch.to(self.device, torch.float32))
        return F.normalize(vectors.float(), dim=1).cpu().numpy()

    def embed(
        self, images_or_paths: Sequence[ImageLike] | ImageLike | torch.Tensor, batch_size: int = 32
    ) -> np.ndarray:
        """Embeddings (N, D) float32, L2-normalised, of image paths, PIL images, or a preprocessed tensor.

        A single path or image gives shape (1, D). Any unreadable file raises an error naming
        it; to skip unreadable files instead use :func:`gcahng.retrieval.gallery.embed_files`.
        Fewer than ``FEW_IMAGES`` images are embedded on one thread (see ``_one_thread_for``).
        """
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        out = [np.zeros((0, self.embedding_dim), np.float32)]
        if isinstance(images_or_paths, torch.Tensor):
            with _one_thread_for(len(images_or_paths)):
                out += [self.embed_batch(chunk) for chunk in images_or_paths.split(batch_size)]
            return np.concatenate(out)
        if isinstance(images_or_paths, (str, Path, Image.Image)):
            images_or_paths = [images_or_paths]
        items = list(images_or_paths)
        with _one_thread_for(len(items)):
            for start in range(0, len(items), batch_size):
                batch = torch.stack([self.preprocess(item) for item in items[start : start + batch_size]])
                out.append(self.embed_batch(batch))
        return np.concatenate(out)


def load(checkpoint: str | Path, device: str | torch.device = "cpu") -> Embedder:
    """The embedding network of a gcahng checkpoint, in eval mode on ``device``.

    Raises :class:`~gcahng.errors.CheckpointError` naming the file when it is missing, not a
    gcahng checkpoint, or its weights do not fit its model spec.
    """
    from gcahng.models.embedding import load_embedding_model

    ckpt = read_checkpoint(checkpoint)
    try:
        model = load_embedding_model(ckpt.model_spec, ckpt.state_dict, source=str(ckpt.path))
    except InputError as err:  # a malformed model spec
        raise CheckpointError(f"{ckpt.path}: {err}") from err
    return Embedder(model, TestPreprocess.for_spec(model.spec), fingerprint=ckpt.fingerprint,
                    checkpoint=ckpt.path, device=device)
