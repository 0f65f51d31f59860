"""Multi-Similarity, triplet and SupCon losses from PML, and the adapter that feeds them synthetic negatives."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from core_helpers import random_batch
from pytorch_metric_learning import losses as pml_losses

from gcahng.cacai import SyntheticNegatives, cacai
from gcahng.errors import InputError
from gcahng.graph import build_batch_graph
from gcahng.losses import METRIC_LOSSES, SyntheticNegativeAdapter, anchor_specific_pairs

C, M, D = 4, 3, 6


def _negatives(z, y, seed=1):
    lam = torch.rand(C * M * C * M, D, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    graph = build_batch_graph(z, y, C, M)
    return cacai(z, lam, 0.7, y, C, M, graph=graph, generator=torch.Generator().manual_seed(seed))


def _slow_sets(labels, negatives=None):
    """Per anchor i: (positives, negatives) as lists of reference rows, by explicit loops.

    Reference rows: the real batch, then (when ``negatives`` is given) the non-own synthetic rows
    in row order. Real pairs only without ``negatives``; with them, only i's own synthetic rows."""
    B = len(labels)
    pos = [[j for j in range(B) if j != i and labels[j] == labels[i]] for i in range(B)]
    if negatives is None:
        neg = [[j for j in range(B) if labels[j] != labels[i]] for i in range(B)]
        return pos, neg
    neg, k = [[] for _ in range(B)], B
    for r in range(len(negatives.labels)):
        if not negatives.own_class[r]:
            neg[int(negatives.anchor_index[r])].append(k)
            k += 1
    return pos, neg


def _slow_multi_similarity(z, ref, pos, neg, alpha=2.0, beta=50.0, base=0.5):
    total = 0.0
    for i in range(len(z)):
        cos = lambda j, i=i: F.cosine_similarity(z[i], ref[j], dim=0)  # noqa: E731
        p = sum((torch.exp(-alpha * (cos(j) - base)) for j in pos[i]), torch.zeros((), dtype=z.dtype))
        n = sum((torch.exp(beta * (cos(j) - base)) for j in neg[i]), torch.zeros((), dtype=z.dtype))
        total = total + torch.log1p(p) / alpha + torch.log1p(n) / beta
    return total / len(z)


def _slow_triplet(z, ref, pos, neg, margin=0.05):
    zn, rn = F.normalize(z, dim=1), F.normalize(ref, dim=1)
    losses = [torch.relu((zn[i] - rn[p]).norm() - (zn[i] - rn[n]).norm() + margin)
              for i in range(len(z)) for p in pos[i] for n in neg[i]]
    nonzero = [v for v in losses if v > 0]
    return sum(nonzero) / len(nonzero) if nonzero else torch.zeros((), dtype=z.dtype)


def _slow_supcon(z, ref, pos, neg, temperature=0.1):
    """Mean over positive pairs (i, p) of -log(exp(s_ip / T) / sum_k exp(s_ik / T)), k over i's positives
    and negatives."""
    cos = lambda i, j: F.cosine_similarity(z[i], ref[j], dim=0) / temperature  # noqa: E731
    terms = []
    for i in range(len(z)):
        if not pos[i] or not neg[i]:
            continue
        denominator = torch.logsumexp(torch.stack([cos(i, k) for k in pos[i] + neg[i]]), dim=0)
        terms += [denominator - cos(i, p) for p in pos[i]]
    return sum(terms) / len(terms)


SLOW = {"multi_similarity": _slow_multi_similarity, "triplet": _slow_triplet, "supcon": _slow_supcon}


def test_anchor_specific_pairs_match_loop():
    z, y = random_batch(C, M, D, seed=3)
    neg = _negatives(z, y)
    a1, p, a2, n = anchor_specific_pairs(y, neg)
    pos_sets, neg_sets = _slow_sets(y.tolist(), neg)
    pos_pairs = sorted((i, j) for i in range(C * M) for j in pos_sets[i])
    neg_pairs = sorted((i, j) for i in range(C * M) for j in neg_sets[i])
    assert sorted(zip(a1.tolist(), p.tolist(), strict=False)) == pos_pairs
    assert sorted(zip(a2.tolist(), n.tolist(), strict=False)) == neg_pairs
    assert len(a2) == M * C * (C - 1)  # each anchor has its C - 1 synthetic negatives, never its own class


@pytest.mark.parametrize("name", ["multi_similarity", "triplet", "supcon"])
def test_metric_loss_matches_slow_formula(name):
    z, y = random_batch(C, M, D, seed=4)
    pos, neg = _slow_sets(y.tolist())
    loss = METRIC_LOSSES.get(name)(num_classes=C, embedding_dim=D)
    torch.testing.assert_close(loss(z, y, C, M), SLOW[name](z, z, pos, neg))


@pytest.mark.parametrize("name", ["multi_similarity", "triplet", "supcon"])
def test_synthetic_loss_pairs_each_negative_with_its_own_anchor_only(name):
    z, y = random_batch(C, M, D, seed=5)
    neg = _negatives(z, y)
    pos, neg_sets = _slow_sets(y.tolist(), neg)
    ref = torch.cat([z, neg.embeddings[~neg.own_class]])
    loss = METRIC_LOSSES.get(name)()
    torch.testing.assert_close(loss.synthetic(z, neg, y, C, M), SLOW[name](z, ref, pos, neg_sets))


def test_a_negative_placed_on_another_anchor_is_not_its_hard_negative():
    """zhat of anchor 0 (class 1) sits exactly on sample 5 (class 2): only anchor 0 may see it."""
    C3, m2 = 3, 2
    z = torch.eye(3, dtype=torch.float64).repeat(m2, 1) + 0.01 * torch.arange(6.0, dtype=torch.float64)[:, None]
    y = torch.arange(C3).repeat(m2)
    rows = torch.arange(m2 * C3 * C3)
    anchor = (rows // (C3 * C3)) * C3 + (rows // C3) % C3
    neg = SyntheticNegatives(
        embeddings=-z[anchor],  # every negative far from its own anchor
        labels=y[rows % C3],
        own_class=(rows % C3) == (rows // C3) % C3,
        anchor_index=anchor,
    )
    emb = neg.embeddings.clone()
    emb[0 * C3 * C3 + 0 * C3 + 1] = z[5]
    neg = dataclasses.replace(neg, embeddings=emb)
    assert METRIC_LOSSES.get("triplet")().synthetic(z, neg, y, C3, m2).item() == 0.0
    keep = ~neg.own_class  # the same rows paired with every anchor of another class would violate the margin
    global_pairing = pml_losses.TripletMarginLoss(margin=0.05)(
        z, y, ref_emb=torch.cat([z, neg.embeddings[keep]]), ref_labels=torch.cat([y, neg.labels[keep]]))
    assert global_pairing.item() > 0.0


@pytest.mark.parametrize("name", ["multi_similarity", "triplet", "proxy_anchor", "supcon"])
def test_gradients_reach_embeddings_and_negatives_and_skip_own_class_rows(name):
    z, y = random_batch(C, M, D, seed=6)
    neg = _negatives(z, y)
    emb = neg.embeddings.detach().clone()
    emb[neg.own_class] = float("nan")  # own-class rows must never be read
    emb.requires_grad_(True)
    z.requires_grad_(True)
    neg = dataclasses.replace(neg, embeddings=emb)
    loss = METRIC_LOSSES.get(name)(num_classes=C, embedding_dim=D)
    j_m, j_syn = loss(z, y, C, M), loss.synthetic(z, neg, y, C, M)
    assert math.isfinite(j_m.item()) and math.isfinite(j_syn.item())
    (j_m + j_syn).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert torch.isfinite(emb.grad).all()
    assert emb.grad[~neg.own_class].abs().sum() > 0 and emb.grad[neg.own_class].abs().sum() == 0


def test_adapter_takes_another_pml_loss_in_one_line():
    z, y = random_batch(C, M, D, seed=7)
    neg = _negatives(z, y)
    loss = SyntheticNegativeAdapter(pml_losses.ContrastiveLoss())
    pos, neg_sets = _slow_sets(y.tolist(), neg)
    ref = torch.cat([z, neg.embeddings[~neg.own_class]])
    d = lambda i, j: (F.normalize(z[i], dim=0) - F.normalize(ref[j], dim=0)).norm()  # noqa: E731
    pos_l = [d(i, j) for i in range(C * M) for j in pos[i]]  # pos margin 0
    neg_l = [torch.relu(1 - d(i, j)) for i in range(C * M) for j in neg_sets[i]]
    avg = lambda v: sum(x for x in v if x > 0) / max(sum(1 for x in v if x > 0), 1)  # noqa: E731
    torch.testing.assert_close(loss.synthetic(z, neg, y, C, M), avg(pos_l) + avg(neg_l))


@pytest.mark.parametrize("name", ["multi_similarity", "triplet", "proxy_anchor"])
def test_bad_shapes_are_named(name):
    z, y = random_batch(C, M, D, seed=8)
    loss = METRIC_LOSSES.get(name)(num_classes=C, embedding_dim=D)
    with pytest.raises(InputError, match=r"embeddings must have shape \(classes_per_batch \* per_class = 12"):
        loss(z[:-1], y[:-1], C, M)
    with pytest.raises(InputError, match=r"labels must have shape \(12,\)"):
        loss(z, y[:-1], C, M)
    neg = _negatives(z, y)
    short = dataclasses.replace(neg, embeddings=neg.embeddings[:-1])
    with pytest.raises(InputError, match=r"synthetic negatives must have shape \(48, 6\)"):
        loss.synthetic(z, short, y, C, M)


def test_registered_names_and_uniform_construction():
    for name in ("multi_similarity", "triplet", "proxy_anchor", "supcon"):
        loss = METRIC_LOSSES.get(name)(num_classes=10, embedding_dim=D)
        assert isinstance(loss, SyntheticNegativeAdapter)
    assert {"npair", "proxy_anchor", "multi_similarity", "triplet", "supcon"} <= set(METRIC_LOSSES.names())
