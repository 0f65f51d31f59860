"""Every metric loss drives a full training step (method.md §6) in every generator mode."""
import math

import pytest
import torch
from core_helpers import chunk_major_labels
from torch import nn

from gcahng.generator import HardNegativeGenerator
from gcahng.hyperparameters import GCLConfig, GeneratorConfig, StepConfig
from gcahng.losses import METRIC_LOSSES
from gcahng.training import TrainingStep, build_optimizers

C, M, D, IN, K = 4, 3, 8, 12, 6


@pytest.mark.parametrize("mode", ["gca", "hdml", "none"])
@pytest.mark.parametrize("name", ["proxy_anchor", "multi_similarity", "triplet"])
def test_training_step_runs_with_finite_losses(name, mode):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(IN, 16), nn.Tanh(), nn.Linear(16, D))
    gen = HardNegativeGenerator(D, K, GeneratorConfig(GCLConfig(iterations=1, heads=2)))
    loss = METRIC_LOSSES.get(name)(num_classes=K, embedding_dim=D)
    step = TrainingStep(net, gen, build_optimizers(net, gen, base_lr=1e-3, gnn_lr=1e-3, metric_loss=loss),
                        metric_loss=loss, config=StepConfig(mode=mode))
    x, y = torch.randn(C * M, IN) * 3, chunk_major_labels(C, M, [5, 0, 3, 1])
    before = [p.detach().clone() for p in [*net.parameters(), *loss.parameters()]]
    for _ in range(2):  # the second epoch has the synthetic term switched on
        out = step(x, y, C, M)
        step.end_epoch()
    assert ("J_syn" in out) == (mode != "none")
    assert all(math.isfinite(v) for v in out.values()), out
    after = [*net.parameters(), *loss.parameters()]
    # the net and any proxies were updated
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=False))
