"""Loss values on hand-computed cases and against literal loops (method.md §5)."""
import math

import pytest
import torch
import torch.nn.functional as F
from core_helpers import random_batch

from gcahng.cacai import SyntheticNegatives, cacai
from gcahng.graph import build_batch_graph
from gcahng.hyperparameters import LossWeights
from gcahng.losses import (
    L2_WEIGHT,
    METRIC_LOSSES,
    NPairLoss,
    diversity_loss,
    generator_loss,
    hardness_loss,
    label_preserving_loss,
)


def test_npair_metric_loss_hand_computed():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([3, 5, 3, 5])
    ce = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2
    l2 = (2 / 2) + (5 / 2)
    assert NPairLoss()(z, y, 2, 2).item() == pytest.approx(ce + L2_WEIGHT * l2, rel=1e-12)


def test_npair_metric_loss_matches_loop_over_chunks():
    C, m, D = 4, 3, 5
    z, y = random_batch(C, m, D, seed=2)
    Z = z.view(m, C, D)
    ce = sum(F.cross_entropy(Z[0] @ Z[s].T, torch.arange(C)) for s in range(1, m)) / (m - 1)
    reg = sum((Z[t] ** 2).sum() / C for t in range(m))
    torch.testing.assert_close(NPairLoss()(z, y, C, m), ce + L2_WEIGHT * reg)


def test_npair_synthetic_loss_matches_loop():
    C, m, D = 3, 3, 4
    z, y = random_batch(C, m, D, seed=5)
    neg = cacai(z, torch.rand(C * m * C * m, D, dtype=torch.float64), 0.6, y, C, m, graph=build_batch_graph(z, y, C, m),
                generator=torch.Generator().manual_seed(1))
    Z = z.view(m, C, D)
    total = 0.0
    for t in range(m):
        cand = torch.zeros(C, C, D, dtype=torch.float64)
        for a in range(C):
            for n in range(C):
                row = t * C * C + a * C + n
                cand[a, n] = Z[(t + 1) % m, a] if n == a else neg.embeddings[row]
        logits = torch.stack([torch.stack([Z[t, a] @ cand[a, n] for n in range(C)]) for a in range(C)])
        ce = F.cross_entropy(logits, torch.arange(C))
        reg = (Z[t] ** 2).sum() / C + (cand.reshape(C * C, D) ** 2).sum() / (C * C)
        total = total + ce + L2_WEIGHT * reg
    torch.testing.assert_close(NPairLoss().synthetic(z, neg, y, C, m), total / m)


def _two_anchor_negatives():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    emb = torch.tensor([[9.0, 9.0], [1.0, 1.0], [0.0, -1.0], [9.0, 9.0]], dtype=torch.float64)
    neg = SyntheticNegatives(
        embeddings=emb,
        labels=torch.tensor([0, 1, 0, 1]),
        own_class=torch.tensor([True, False, False, True]),
        anchor_index=torch.tensor([0, 0, 1, 1]),
    )
    return z, neg


def test_hardness_loss_masks_own_class_rows_but_counts_them():
    z, neg = _two_anchor_negatives()
    expected = (0 + (1 - 1 / math.sqrt(2)) + 2 + 0) / 4
    assert hardness_loss(z, neg).item() == pytest.approx(expected, rel=1e-12)


def _two_node_graph():
    """The batch graph of two nodes of different classes (C = 2, m = 1): 4 edges."""
    return build_batch_graph(torch.tensor([[1.0], [2.0]], dtype=torch.float64), torch.tensor([0, 1]), 2, 1)


def test_diversity_loss_hand_computed():
    lam = torch.tensor([[0.2], [0.6], [0.5], [0.5]], dtype=torch.float64)
    assert diversity_loss(lam, _two_node_graph()).item() == pytest.approx(0.01 * (1 - math.sqrt(0.08 / 4)), rel=1e-12)


def test_label_preserving_loss_and_generator_combination():
    z, neg = _two_anchor_negatives()
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 3.0]], dtype=torch.float64)
    soft = label_preserving_loss(logits, neg)
    assert soft.item() == pytest.approx(F.cross_entropy(logits, neg.labels).item())
    lam = torch.tensor([[0.2], [0.6], [0.5], [0.5]], dtype=torch.float64)
    w = LossWeights(softmax_weight=20.0, w_dot=10.0, w_div=60.0)
    terms = generator_loss(z, lam, neg, logits, w, graph=_two_node_graph())
    expected = 0.5 * (20 * soft + 10 * hardness_loss(z, neg) + 60 * diversity_loss(lam, _two_node_graph()))
    assert terms["J_gen"].item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(terms) == {"J_soft", "J_sim", "J_div", "J_gen"}


def test_metric_loss_registry_has_npair():
    assert METRIC_LOSSES.get("npair") is NPairLoss
