"""CACAI against a slow per-(anchor, class, candidate) loop."""
import pytest
import torch
from core_helpers import random_batch

from gcahng.cacai import cacai, interpolate_candidates
from gcahng.graph import build_batch_graph


def slow_cacai(z, lam, gamma, C, m, u):
    """Literal method.md §4; ``u[t][s-1]`` is the mixing weight (a float or a (C, C) table)."""
    B, D = z.shape
    node = lambda t, c: t * C + c  # noqa: E731
    rows = []
    for t in range(m):
        for a in range(C):
            za = z[node(t, a)]
            zp = z[node((t + 1) % m, a)]
            d_pos = (za - zp).norm()
            for n in range(C):
                zh = []
                for s in range(m):
                    cand = z[node(s, n)]
                    d_neg = (za - cand).norm()
                    if d_neg > d_pos:
                        lam_e = lam[node(t, a) * B + node(s, n)]
                        r = (d_pos + (d_neg - d_pos) * gamma * lam_e) / d_neg
                        zh.append(za + r * (cand - za))
                    else:
                        zh.append(cand.clone())
                acc = zh[0]
                for s in range(1, m):
                    w = u[t][s - 1] if not torch.is_tensor(u[t][s - 1]) else u[t][s - 1][a, n]
                    acc = zh[s] + w * (acc - zh[s])
                rows.append(acc)
    return torch.stack(rows)


@pytest.mark.parametrize("mode", ["shared", "per-pair"])
def test_matches_slow_loop(mode):
    C, m, D = 3, 3, 5
    z, y = random_batch(C, m, D, seed=3)
    lam = torch.rand(C * m * C * m, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    gamma = 0.7
    graph = build_batch_graph(z, y, C, m)
    neg = cacai(z, lam, gamma, y, C, m, graph=graph, random_weighting=mode, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    if mode == "shared":  # one draw per (t, s), t outer, s inner
        flat = torch.rand(m * (m - 1), generator=g).double().tolist()
        u = [[flat[t * (m - 1) + s] for s in range(m - 1)] for t in range(m)]
    else:
        draws = torch.rand(m, m - 1, C, C, generator=g).double()
        u = [[draws[t, s] for s in range(m - 1)] for t in range(m)]
    torch.testing.assert_close(neg.embeddings, slow_cacai(z, lam, gamma, C, m, u))


def test_labels_own_class_rows_and_anchor_index():
    C, m = 3, 2
    z, _ = random_batch(C, m, 4)
    y = torch.tensor([7, 2, 9]).repeat(m)
    neg = cacai(z, torch.rand(36, 4, dtype=torch.float64), 1.0, y, C, m, graph=build_batch_graph(z, y, C, m))
    assert neg.embeddings.shape == (m * C * C, 4)
    for row in range(m * C * C):
        t, rest = divmod(row, C * C)
        a, n = divmod(rest, C)
        assert neg.labels[row] == y[n]
        assert bool(neg.own_class[row]) == (a == n)
        assert neg.anchor_index[row] == t * C + a


def test_lambda_one_and_gamma_one_return_the_candidate():
    C, m, D = 3, 2, 4
    z, _ = random_batch(C, m, D)
    zhat = interpolate_candidates(z, torch.ones(36, D, dtype=torch.float64), 1.0, C, m)
    Z = z.view(m, C, D)
    for t in range(m):
        for a in range(C):
            torch.testing.assert_close(zhat[t, a], Z)


def test_lambda_zero_places_each_channel_at_positive_distance():
    C, m, D = 4, 2, 6
    z, _ = random_batch(C, m, D, seed=1)
    zhat = interpolate_candidates(z, torch.zeros(64, D, dtype=torch.float64), 1.0, C, m)
    Z = z.view(m, C, D)
    checked = 0
    for t in range(m):
        for a in range(C):
            za, zp = Z[t, a], Z[(t + 1) % m, a]
            d_pos = (za - zp).norm()
            for s in range(m):
                for n in range(C):
                    cand = Z[s, n]
                    d_neg = (za - cand).norm()
                    if d_neg > d_pos:
                        direction = (cand - za) / d_neg
                        torch.testing.assert_close(zhat[t, a, s, n], za + d_pos * direction)
                        checked += 1
    assert checked > 0


def test_candidates_not_farther_than_positive_come_back_unchanged():
    C, m, D = 2, 2, 3
    z = torch.tensor(
        [[0.0, 0.0, 0.0], [5.0, 0.0, 0.0],  # chunk 0: anchors
         [4.0, 0.0, 0.0], [5.5, 0.0, 0.0]],  # chunk 1
        dtype=torch.float64,
    )
    lam = torch.full((16, D), 0.3, dtype=torch.float64)
    zhat = interpolate_candidates(z, lam, 0.9, C, m)
    # anchor (0,0) has d+ = 4: the candidate (1,0) itself (d- = 4) and the anchor (d- = 0) stay
    torch.testing.assert_close(zhat[0, 0, 1, 0], z[2])
    torch.testing.assert_close(zhat[0, 0, 0, 0], z[0])
    # candidate (0,1) at distance 5 > 4 is pulled in, but never closer than d+
    assert 4.0 - 1e-12 <= (zhat[0, 0, 0, 1] - z[0]).norm() <= 5.0


def test_mixing_is_a_convex_combination_of_the_class_candidates():
    C, m, D = 3, 4, 5
    z, y = random_batch(C, m, D, seed=7)
    lam = torch.rand(C * m * C * m, D, dtype=torch.float64)
    for mode in ("shared", "per-pair"):
        neg = cacai(z, lam, 0.8, y, C, m, graph=build_batch_graph(z, y, C, m), random_weighting=mode,
                    generator=torch.Generator().manual_seed(0))
        zhat = interpolate_candidates(z, lam, 0.8, C, m)  # [t, a, s, n]
        out = neg.embeddings.view(m, C, C, D)
        lo = zhat.min(dim=2).values  # over s
        hi = zhat.max(dim=2).values
        assert ((out >= lo - 1e-12) & (out <= hi + 1e-12)).all()


def test_gradients_are_finite_through_the_anchor_own_candidate():
    C, m, D = 3, 2, 4
    z, y = random_batch(C, m, D)
    z = z.float().requires_grad_(True)
    lam = torch.rand(36, D, requires_grad=True)
    graph = build_batch_graph(z.detach(), y, C, m)
    neg = cacai(z, lam, 0.5, y, C, m, graph=graph, generator=torch.Generator().manual_seed(0))
    neg.embeddings.sum().backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(lam.grad).all()


def test_bad_arguments():
    z, y = random_batch(2, 2, 4)
    with pytest.raises(ValueError, match="random weighting"):
        cacai(z, None, 1.0, y, 2, 2, random_weighting="both")
    with pytest.raises(ValueError, match="one row per edge"):
        cacai(z, torch.rand(4, 4), 1.0, y, 2, 2, graph=build_batch_graph(z, y, 2, 2))
    with pytest.raises(ValueError, match="lambda must have shape"):
        cacai(z, torch.rand(16, 3), 1.0, y, 2, 2, graph=build_batch_graph(z, y, 2, 2))
