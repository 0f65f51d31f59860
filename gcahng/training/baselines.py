"""What training bought: the test metrics of the run's network as initialised, and of raw pixels.

``gcahng fit`` prints them under the test table (always on digits, else with ``--baselines``).
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from gcahng.config import TrainConfig
from gcahng.evaluation import RetrievalMetrics
from gcahng.models import ModelSpec
from gcahng.training.build import build_model, load_datasets, loader_workers, resolve_device, seed_everything
from gcahng.training.evaluate import evaluate_split

DEFAULT_BASELINE_DATASETS = ("digits",)  # where ``gcahng fit`` prints the baselines without --baselines


class RawPixels(nn.Module):
    """The test-time images, not normalised, flattened: ``(B, 3, S, S) -> (B, 3 * S * S)``;
    ranked by cosine similarity like any embedding."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = replace(spec, embedding_dim=3 * spec.image_size**2, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def forward(self, images: Tensor) -> Tensor:
        return images.flatten(1)


def baseline_metrics(cfg: TrainConfig) -> dict[str, RetrievalMetrics]:
    """Test metrics of ``"untrained network"`` (built as the run builds it under its seed, so
    with its pretrained weights when it has them) and of ``"raw pixels"``."""
    device = resolve_device(cfg.device)
    datasets = load_datasets(cfg)
    seed_everything(cfg.seed)
    untrained = build_model(cfg)
    options = {"dataset_name": cfg.dataset, "device": device, "batch_size": cfg.eval_batch_size,
               "workers": loader_workers(cfg, device)}
    with torch.no_grad():
        return {
            "untrained network": evaluate_split(untrained, datasets, "test", **options),
            "raw pixels": evaluate_split(RawPixels(untrained.spec), datasets, "test", **options),
        }


def baseline_lines(trained: RetrievalMetrics, baselines: dict[str, RetrievalMetrics]) -> str:
    """Recall@1 and MAP@R of the trained network and of each baseline, one line each."""
    rows = {"trained network": trained, **baselines}
    width = max(map(len, rows))
    return "\n".join(
        ["baselines on the test split (what training bought):"]
        + [f"  {name:<{width}}  R@1 {100 * m.recall[1]:5.1f}  MAP@R {100 * m.map_at_r:5.1f}"
           for name, m in rows.items()]
    )
