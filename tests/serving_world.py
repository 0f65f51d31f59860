"""A generated gallery, a tiny_cnn checkpoint, its ONNX export and indexes, for the serving tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gcahng.models.embedding import create_embedding_model

CLASSES, PER_CLASS = ("apple", "pear", "plum"), 5


def make_checkpoint(path: Path, backbone: str = "tiny_cnn", image_size: int = 32, dim: int = 8, seed: int = 0) -> Path:
    """A checkpoint of a randomly initialised network whose BatchNorm statistics were updated on noise
    (so that its embeddings depend on the image, unlike a fresh network's)."""
    torch.manual_seed(seed)
    model = create_embedding_model(backbone, dim, pretrained=False, image_size=image_size)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in norms:
        layer.momentum = None  # running statistics = the average over the batches below
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, image_size, image_size))
    model.eval()
    for layer in norms:
        layer.momentum = 0.1
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, path)
    return path


def make_gallery(folder: Path) -> Path:
    """PER_CLASS images for each of CLASSES, each class with its own dominant channel."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (40 + 9 * i, 56, 3), dtype=np.uint8)
            pixels[..., c] = 255
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return folder


def build_world(root: Path) -> dict[str, Path]:
    """gallery/, model.pt, model.onnx, index_ckpt/ (built from the checkpoint), index_onnx/ (from the ONNX file)."""
    from click.testing import CliRunner

    from gcahng.cli.main import cli

    paths = {"gallery": make_gallery(root / "gallery"), "checkpoint": make_checkpoint(root / "model.pt"),
             "onnx": root / "model.onnx", "index_ckpt": root / "index_ckpt", "index_onnx": root / "index_onnx"}
    runner = CliRunner()
    for args in (["export", paths["checkpoint"], "--out", paths["onnx"]],
                 ["index", paths["checkpoint"], "--images", paths["gallery"], "--out", paths["index_ckpt"],
                  "--workers", "0"],
                 ["index", "--model", paths["onnx"], "--images", paths["gallery"], "--out", paths["index_onnx"],
                  "--workers", "0"]):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    return paths
