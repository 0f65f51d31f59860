"""The baselines printed under the test table: the untrained network and raw pixels."""
from __future__ import annotations

import numpy as np
import torch

from gcahng.config import TrainConfig
from gcahng.data import create_dataset
from gcahng.evaluation import PROTOCOLS, evaluate_leave_one_out
from gcahng.models import ModelSpec
from gcahng.training.baselines import RawPixels, baseline_lines, baseline_metrics


def test_raw_pixels_flattens_unnormalised_images() -> None:
    net = RawPixels(ModelSpec(backbone="tiny_cnn", embedding_dim=8, image_size=4))
    assert net.spec.mean == (0.0, 0.0, 0.0) and net.spec.std == (1.0, 1.0, 1.0)
    assert net.spec.embedding_dim == 48
    images = torch.arange(2 * 48, dtype=torch.float32).view(2, 3, 4, 4)
    torch.testing.assert_close(net(images), images.view(2, 48))


def test_digits_baselines_match_a_direct_computation() -> None:
    cfg = TrainConfig(dataset="digits", backbone="tiny_cnn", embedding_dim=16, image_size=8, resize_size=8,
                      pretrained=False, device="cpu")
    metrics = baseline_metrics(cfg)
    test = create_dataset("digits", split="test")
    pixels = np.stack([np.asarray(test.load_image(i).resize((8, 8)), dtype=np.float32).transpose(2, 0, 1).ravel()
                       for i in range(len(test))])
    direct = evaluate_leave_one_out(pixels, test.labels, PROTOCOLS["digits"].ks)
    assert abs(metrics["raw pixels"].map_at_r - direct.map_at_r) < 0.01
    assert 0.0 < metrics["untrained network"].map_at_r < 1.0
    lines = baseline_lines(metrics["raw pixels"], metrics).splitlines()
    assert len(lines) == 4 and lines[-1].strip().startswith("raw pixels")
