"""What the hostile cases start from, built once per session in-process (no training step).

- ``model.pt``: a tiny_cnn checkpoint (8-d, 32 px) as ``gcahng index``/``eval`` read it;
- ``gallery/``: 3 classes x 3 small PNGs, and ``index/``, its flat index built by ``gcahng index``;
- ``digits_index/``: an index of the digits test split (a dataset-split index);
- ``run/``: a run folder of a 2-epoch digits run after epoch 1 (config.yaml, metrics.jsonl,
  checkpoints/last.pt and best.pt) whose second epoch is 5 iterations, for ``fit --resume``.
"""
from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli

RUN_CONFIG = {
    "dataset": "digits", "backbone": "tiny_cnn", "pretrained": False, "image_size": 16, "resize_size": 16,
    "embedding_dim": 16, "class_augmentation": "none", "classes_per_batch": 5, "per_class": 32, "epochs": 2,
    "eval_every": 1, "selection": "last", "val_fraction": None, "workers": 0, "device": "cpu", "warmup_epochs": 0,
}
"""The run of ``run/``: 901 training digits in batches of 5 x 32, so one epoch is 5 iterations."""


@dataclass(frozen=True)
class World:
    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.pt"

    @property
    def gallery(self) -> Path:
        return self.root / "gallery"

    @property
    def index(self) -> Path:
        return self.root / "index"

    @property
    def digits_index(self) -> Path:
        return self.root / "digits_index"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def copy(self, name: str, to: Path) -> Path:
        """A copy of ``root/name`` (file or folder) at ``to``."""
        source = self.root / name
        if source.is_dir():
            shutil.copytree(source, to, symlinks=True)
        else:
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to)
        return to


def checkpoint_payload(seed: int = 0, dim: int = 8, image_size: int = 32) -> dict:
    """An inference checkpoint of a tiny_cnn network, as ``model.pt`` holds it."""
    from gcahng.config import TrainConfig
    from gcahng.formats.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from gcahng.models.embedding import create_embedding_model

    torch.manual_seed(seed)
    model = create_embedding_model("tiny_cnn", dim, pretrained=False, image_size=image_size)
    config = TrainConfig(backbone="tiny_cnn", embedding_dim=dim, image_size=image_size, pretrained=False).to_dict()
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model_spec": model.spec.to_dict(),
            "model": model.state_dict(), "config": config}


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    pixels[..., int(np.argmax(colour))] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def build_world(root: Path) -> World:
    world = World(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_payload(), world.model)
    for c, name in enumerate(("apple", "pear", "plum")):
        (world.gallery / name).mkdir(parents=True)
        for i in range(3):
            colour = tuple(255 if j == c else 0 for j in range(3))
            (world.gallery / name / f"{i}.png").write_bytes(png_bytes(colour, seed=3 * c + i))
    for args in (["--images", str(world.gallery), "--out", str(world.index)],
                 ["digits", "--split", "test", "--out", str(world.digits_index)]):
        result = CliRunner().invoke(cli, ["index", str(world.model), *args, "--workers", "0"])
        assert result.exit_code == 0, result.output
    _build_run(world.run)
    return world


def _build_run(run: Path) -> None:
    """The run folder a 2-epoch run leaves after epoch 1 (weights as initialised)."""
    from gcahng.config import TrainConfig, config_from_dict, save_config
    from gcahng.formats.checkpoint import atomic_save
    from gcahng.formats.metrics_log import append_record
    from gcahng.training.build import build_training_parts, load_datasets
    from gcahng.training.trainer import BEST, CONFIG_FILE, LAST, Trainer

    cfg: TrainConfig = config_from_dict({**TrainConfig().to_dict(), **RUN_CONFIG})
    trainer = Trainer(cfg, run, progress=False)
    parts = build_training_parts(cfg, load_datasets(cfg)["train"].num_classes, trainer.device)
    (run / "checkpoints").mkdir(parents=True)
    save_config(cfg, run / CONFIG_FILE)
    best = {"score": None, "epoch": 1}
    atomic_save(trainer._payload(parts, 1, best, None, full=False), run / BEST)
    atomic_save(trainer._payload(parts, 1, best, None, full=True), run / LAST)
    append_record(run / "metrics.jsonl", {"epoch": 1, "time_s": 0.5, "loss": {"total": 1.0}, "lr": {"embedding": 3e-4}})


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))
