"""``export_onnx``: a gcahng checkpoint's embedding network (backbone, head, L2 normalisation) as ONNX.

Uses PyTorch's own exporter (``torch.onnx.export(..., dynamo=True)``, which needs
``onnxscript``; opsets from 18) with a dynamic batch axis, writes the metadata of
:mod:`gcahng.serving.onnx_format`, then checks onnxruntime against PyTorch on a batch of
images before the file is put at its final path: a model that does not match is never left
behind.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gcahng.errors import GcahngError, InputError
from gcahng.formats.atomic import write_atomically
from gcahng.retrieval.embedder import Embedder, load
from gcahng.serving.onnx_format import INPUT_NAME, ONNX_FORMAT, ONNX_VERSION, OUTPUT_NAME, PREFIX

DEFAULT_OPSET = 18
TOLERANCE = 1e-4
"""Largest accepted max-abs difference between onnxruntime's and PyTorch's float32 embeddings."""
MAX_IMAGE_SIZE = 2048
"""Largest crop side ``gcahng export`` traces a network at, pixels."""
VERIFY_SIZES = ((97, 131), (200, 150), (64, 64))
"""Width x height of the generated verification images (odd sizes exercise resize and crop)."""


class ExportError(GcahngError):
    """The model cannot be exported, or the exported model does not match PyTorch."""


class _NormalisedEmbedding(nn.Module):
    """The embedding network followed by L2 normalisation: what retrieval computes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model(images), dim=1)


@dataclass(frozen=True)
class ExportReport:
    """What was written and how closely onnxruntime matched PyTorch (max abs difference)."""

    path: Path
    opset: int
    embedding_dim: int
    image_size: int
    max_abs_diff: float
    num_images: int


def _verification_images(images_dir: Path | None, limit: int = 8) -> list[Image.Image]:
    if images_dir is not None:
        from gcahng.data.images import load_rgb
        from gcahng.retrieval.files import list_images

        return [load_rgb(path) for path in list_images(images_dir)[:limit]]
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in VERIFY_SIZES]


def _with_image_size(embedder: Embedder, image_size: int | None) -> Embedder:
    """``embedder`` with its preprocessing cropping to ``image_size`` (resize scaled as the spec's default)."""
    if image_size is None or image_size == embedder.spec.image_size:
        return embedder
    from dataclasses import replace

    from gcahng.preprocess import TestPreprocess

    spec = replace(embedder.spec, image_size=image_size, resize_size=None)
    return Embedder(embedder.model, TestPreprocess.for_spec(spec), fingerprint=embedder.fingerprint,
                    checkpoint=embedder.checkpoint)


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    *,
    image_size: int | None = None,
    opset: int = DEFAULT_OPSET,
    images_dir: str | Path | None = None,
    force: bool = False,
) -> ExportReport:
    """Export ``checkpoint`` to ``out`` and verify it; returns an :class:`ExportReport`.

    ``image_size`` (default: the checkpoint's) sets the crop written into the metadata and
    used for tracing; the batch axis is dynamic. Raises :class:`InputError` when ``out``
    exists and not ``force``, :class:`ExportError` when export fails or onnxruntime differs
    from PyTorch by more than ``TOLERANCE``.
    """
    import onnx
    import onnxruntime as ort

    out = Path(out).expanduser()
    if out.exists() and not force:
        raise InputError(f"{out} exists; pass --force to overwrite it")
    if out.exists() and os.path.exists(checkpoint) and os.path.samefile(out, checkpoint):
        raise InputError(f"--out {out} is the checkpoint being exported; it is never overwritten")
    newest = onnx.defs.onnx_opset_version()
    if not 18 <= opset <= newest:
        raise InputError(f"opset must be between 18 (torch's ONNX exporter) and {newest} (the newest this onnx "
                         f"knows), got {opset}")
    if image_size is not None and not 8 <= image_size <= MAX_IMAGE_SIZE:
        raise InputError(f"--image-size must be between 8 and {MAX_IMAGE_SIZE} pixels, got {image_size}")
    embedder = _with_image_size(load(checkpoint), image_size)
    preprocess = embedder.transform
    size = preprocess.image_size
    module = _NormalisedEmbedding(embedder.model).eval()
    example = torch.zeros(2, 3, size, size)
    checked: dict[str, float | int] = {}

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1)}},
                verbose=False,
            )
        if program is None:
            raise ExportError("torch.onnx.export returned no program")
        program.save(tmp)
        model = onnx.load(tmp)
        written = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None)
        if written != opset:
            raise ExportError(f"torch's ONNX exporter wrote opset {written}, not the opset {opset} asked for; "
                              f"{out} not written")
        spec = embedder.spec.to_dict() | {"image_size": size, "resize_size": preprocess.resize_size}
        meta = {"format": ONNX_FORMAT, "version": ONNX_VERSION, "embedding_dim": str(embedder.embedding_dim),
                "preprocess": json.dumps(preprocess.to_dict()), "model_spec": json.dumps(spec),
                "source_fingerprint": embedder.fingerprint, "source_checkpoint": str(embedder.checkpoint)}
        del model.metadata_props[:]
        for key, value in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = PREFIX + key, value
        onnx.save(model, tmp)
        images = _verification_images(None if images_dir is None else Path(images_dir))
        batch = preprocess.batch(images)
        expected = embedder.embed_batch(torch.from_numpy(batch))
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        diff = float(np.abs(got - expected).max())
        if got.shape != expected.shape or not diff <= TOLERANCE:
            raise ExportError(f"onnxruntime differs from PyTorch by {diff:.3g} (max abs; allowed {TOLERANCE}) "
                              f"on {len(images)} images; {out} not written")
        checked.update(diff=diff, images=len(images))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(out, write)  # a unique temporary beside ``out``, renamed into place once verified
    except GcahngError:
        raise
    except Exception as err:  # the exporter raises many types
        raise ExportError(f"cannot export {checkpoint} to ONNX: {type(err).__name__}: {err}") from err
    diff, count = float(checked["diff"]), int(checked["images"])
    return ExportReport(out, opset, embedder.embedding_dim, size, diff, count)
