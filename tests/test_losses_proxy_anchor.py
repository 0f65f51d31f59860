"""Proxy-Anchor: value against the paper's formula, synthetic samples, proxies and their learning rate."""
import math

import pytest
import torch
import torch.nn.functional as F
from core_helpers import chunk_major_labels, random_batch

from gcahng.cacai import cacai
from gcahng.errors import InputError
from gcahng.generator import HardNegativeGenerator
from gcahng.hyperparameters import GCLConfig, GeneratorConfig
from gcahng.losses import METRIC_LOSSES, ProxyAnchorLoss
from gcahng.training import build_optimizers

C, M, D, K = 3, 2, 5, 7


def _slow_proxy_anchor(x, labels, proxies, margin=0.1, alpha=32.0):
    """Kim et al. 2020, eq. 4, by loops over proxies and samples."""
    pos_terms, neg_total = [], 0.0
    for k in range(proxies.shape[0]):
        cos = [F.cosine_similarity(x[i], proxies[k], dim=0) for i in range(len(x))]
        pos = [torch.exp(-alpha * (c - margin)) for c, y in zip(cos, labels, strict=False) if y == k]
        neg = [torch.exp(alpha * (c + margin)) for c, y in zip(cos, labels, strict=False) if y != k]
        if pos:
            pos_terms.append(torch.log1p(sum(pos)))
        neg_total = neg_total + (torch.log1p(sum(neg)) if neg else 0.0)
    return sum(pos_terms) / len(pos_terms) + neg_total / proxies.shape[0]


def _batch(seed):
    z, _ = random_batch(C, M, D, seed=seed)
    return z, chunk_major_labels(C, M, [4, 0, 6])  # proxies 1, 2, 3, 5 have no positive in the batch


def test_value_matches_the_papers_formula():
    torch.manual_seed(0)
    loss = ProxyAnchorLoss(num_classes=K, embedding_dim=D).double()
    z, y = _batch(1)
    torch.testing.assert_close(loss(z, y, C, M), _slow_proxy_anchor(z, y.tolist(), loss.proxies.detach()))


def test_synthetic_negatives_are_extra_samples_of_their_class():
    torch.manual_seed(0)
    loss = ProxyAnchorLoss(num_classes=K, embedding_dim=D).double()
    z, y = _batch(2)
    neg = cacai(z, None, 0.5, y, C, M, generator=torch.Generator().manual_seed(0))
    x, labels = [*z], y.tolist()
    for r in range(M * C * C):
        if not neg.own_class[r]:
            x.append(neg.embeddings[r])
            labels.append(int(neg.labels[r]))
    expected = _slow_proxy_anchor(torch.stack(x), labels, loss.proxies.detach())
    torch.testing.assert_close(loss.synthetic(z, neg, y, C, M), expected)


def test_proxies_use_kaiming_normal_fan_out():
    torch.manual_seed(0)
    proxies = ProxyAnchorLoss(num_classes=4000, embedding_dim=16).proxies.detach()
    assert proxies.std().item() == pytest.approx(math.sqrt(2 / 4000), rel=0.03)  # fan_out = number of proxies
    assert abs(proxies.mean().item()) < 0.05 * math.sqrt(2 / 4000)


def test_proxies_train_at_100x_the_head_learning_rate():
    loss = METRIC_LOSSES.get("proxy_anchor")(num_classes=K, embedding_dim=D)
    net = torch.nn.Linear(4, D)
    generator = HardNegativeGenerator(D, K, GeneratorConfig(GCLConfig(iterations=1, heads=1)))
    opts = build_optimizers(net, generator, base_lr=3e-5, gnn_lr=1e-4,
                            metric_loss=loss)
    group = {g["name"]: g for g in opts.embedding.param_groups}["metric_loss"]
    assert group["lr"] == pytest.approx(3e-3)
    assert len(group["params"]) == 1 and group["params"][0] is loss.proxies


def test_bad_construction_and_labels_are_named():
    with pytest.raises(InputError, match="proxy_anchor needs a positive integer num_classes, got None"):
        METRIC_LOSSES.get("proxy_anchor")(embedding_dim=D)
    with pytest.raises(InputError, match="embedding_dim, got 0"):
        ProxyAnchorLoss(num_classes=K, embedding_dim=0)
    z, y = _batch(3)
    loss = ProxyAnchorLoss(num_classes=K, embedding_dim=D).double()
    with pytest.raises(InputError, match=r"labels must lie in \[0, 7\) \(num_classes\), got labels from 0 to 7"):
        loss(z, chunk_major_labels(C, M, [4, 0, 7]), C, M)
    with pytest.raises(InputError, match="built for embedding_dim 5, got embeddings of width 4"):
        loss(z[:, :4], y, C, M)
