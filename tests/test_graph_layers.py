"""GCL layers against slow, explicit per-edge loops (float64)."""
import math

import pytest
import torch
import torch.nn.functional as F
from core_helpers import random_batch

from gcahng.graph import (
    EDGE_TO_NODE,
    GCL,
    NODE_TO_EDGE,
    NODE_TO_NODE,
    EdgeAttention,
    MeanEdgeToNode,
    NodeAttention,
    SumEdgeToNode,
    build_batch_graph,
)
from gcahng.hyperparameters import GCLConfig


def _graph(C=3, m=2, D=8, seed=0):
    z, y = random_batch(C, m, D, seed=seed)
    return build_batch_graph(z, y, C, m)


def test_node_attention_matches_loop_with_zero_slot_and_mask():
    torch.manual_seed(0)
    C, m, D, H = 3, 3, 8, 2
    g = _graph(C, m, D)
    layer = NodeAttention(D, heads=H).double()
    h = torch.randn(C * m, D, dtype=torch.float64)
    B, d = C * m, D // H
    q = layer.lin_q(h).view(B, H, d)
    k = layer.lin_k(h).view(B, H, d)
    v = layer.lin_v(h).view(B, H, d)
    expected_w = torch.zeros(B * B, H, dtype=torch.float64)
    expected_o = torch.zeros(B, H, d, dtype=torch.float64)
    for j in range(B):  # target
        for head in range(H):
            valid = [i for i in range(B) if g.y[i] != g.y[j]]
            scores = {i: float((q[j, head] @ k[i, head]).detach()) / math.sqrt(d) for i in valid}
            denom = 1.0 + sum(math.exp(s) for s in scores.values())
            for i, s in scores.items():
                a = math.exp(s) / denom
                expected_w[i * B + j, head] = a
                expected_o[j, head] += a * v[i, head]
    weights = layer.attention_weights(h, g)
    torch.testing.assert_close(weights, expected_w)
    assert (weights[g.same_class] == 0).all()  # same-class edges and self-loops: exactly 0
    out = layer(h, g)
    torch.testing.assert_close(out, layer.lin_out(expected_o.reshape(B, D)))


def test_node_attention_is_stable_for_large_scores():
    g = _graph(2, 2, 4)
    layer = NodeAttention(4, heads=1).double()
    h = torch.randn(4, 4, dtype=torch.float64) * 1e4
    w = layer.attention_weights(h, g)
    assert torch.isfinite(w).all() and (w >= 0).all()
    sums = torch.zeros(4, dtype=torch.float64).index_add_(0, g.edge_index[1], w[:, 0])
    assert (sums <= 1 + 1e-12).all()


def _propagated(layer, h, g):
    """NodeAttention through PyG's propagate over the cross-class edges (its path for any graph)."""
    B = h.shape[0]
    q, k, v = layer._heads(layer.lin_q(h)), layer._heads(layer.lin_k(h)), layer._heads(layer.lin_v(h))
    edges = g.edge_index[:, ~g.same_class]
    return layer.lin_out(layer.propagate(edges, q=q, k=k, v=v, size=(B, B)).reshape(B, -1))


@pytest.mark.parametrize("C,m,scale", [(4, 3, 1.0), (1, 4, 1.0), (3, 2, 1e4)])
def test_node_attention_dense_path_equals_propagate_with_gradients(C, m, scale):
    """On the complete batch graph the layer computes (H, B, B) matrices; values and gradients
    are those of the per-edge propagate, also with one class (no cross-class edge) and huge scores."""
    torch.manual_seed(1)
    D, H = 8, 2
    g = _graph(C, m, D)
    layer = NodeAttention(D, heads=H).double()
    h = (torch.randn(C * m, D, dtype=torch.float64) * scale).requires_grad_(True)
    dense, sparse = layer(h, g), _propagated(layer, h, g)
    assert torch.isfinite(dense).all()
    torch.testing.assert_close(dense, sparse, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn_like(dense)
    got = torch.autograd.grad(dense, [h, *layer.parameters()], grad_out)
    want = torch.autograd.grad(sparse, [h, *layer.parameters()], grad_out)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_node_attention_on_reordered_edges_takes_the_per_edge_path():
    torch.manual_seed(2)
    g = _graph(3, 2, 8)
    layer = NodeAttention(8, heads=2).double()
    h = torch.randn(6, 8, dtype=torch.float64)
    perm = torch.randperm(g.edge_index.shape[1])
    shuffled = g.clone()
    shuffled.edge_index, shuffled.same_class = g.edge_index[:, perm], g.same_class[perm]
    torch.testing.assert_close(layer(h, shuffled), layer(h, g), rtol=1e-12, atol=1e-12)


def test_projections_run_on_nodes_not_on_gathered_edges():
    C, m, D = 3, 2, 8
    g = _graph(C, m, D)
    gcl = GCL(D, 5, GCLConfig(iterations=1, heads=2)).double()
    rows = {}
    hooks = []
    for name, module in gcl.named_modules():
        if name.endswith(("lin_k", "lin_v")) or name.endswith("node_to_node.lin_q"):
            hooks.append(
                module.register_forward_hook(lambda mod, inp, out, name=name: rows.__setitem__(name, inp[0].shape[0]))
            )
    gcl(g)
    assert rows and all(n == C * m for n in rows.values()), rows


def test_edge_to_node_sum_and_mean_over_edges_leaving_the_source():
    C, m, D = 2, 3, 6
    g = _graph(C, m, D)
    B = C * m
    h = torch.randn(B, D, dtype=torch.float64)
    w = torch.randn(B * B, D, dtype=torch.float64)
    for cls, reduce in ((SumEdgeToNode, "sum"), (MeanEdgeToNode, "mean")):
        layer = cls(D).double()
        out = layer(h, w, g)
        for i in range(B):
            msgs = torch.stack([F.gelu(layer.lin(w[i * B + j])) for j in range(B)])
            expected = msgs.sum(0) if reduce == "sum" else msgs.mean(0)
            torch.testing.assert_close(out[i], expected)


def test_edge_attention_matches_loop():
    torch.manual_seed(1)
    C, m, D = 2, 2, 6
    g = _graph(C, m, D)
    B = C * m
    layer = EdgeAttention(D, dropout=0.1).double().eval()
    h = torch.randn(B, D, dtype=torch.float64)
    w = torch.randn(B * B, D, dtype=torch.float64)
    out = layer(h, w, g)
    n = F.gelu(layer.lin_node(h))
    for e in range(B * B):
        i, j = divmod(e, B)
        q = layer.lin_q(w[e])
        k_i, k_j = layer.lin_k(n[i]), layer.lin_k(n[j])
        v_i, v_j = layer.lin_v(n[i]), layer.lin_v(n[j])
        s = torch.stack([q @ k_i, q @ k_j]) / math.sqrt(D)
        alpha = s.softmax(0)
        torch.testing.assert_close(out[e], alpha[0] * v_i + alpha[1] * v_j)


def test_edge_attention_dropout_acts_only_in_training():
    g = _graph(2, 2, 6)
    layer = EdgeAttention(6, dropout=0.5).double()
    h = torch.randn(4, 6, dtype=torch.float64)
    w = torch.randn(16, 6, dtype=torch.float64)
    layer.eval()
    torch.testing.assert_close(layer(h, w, g), layer(h, w, g))
    layer.train()
    torch.manual_seed(0)
    assert not torch.allclose(layer(h, w, g), layer.eval()(h, w, g))


def test_edge_features_stay_symmetric_in_eval_mode():
    C, m, D = 3, 2, 8
    g = _graph(C, m, D)
    gcl = GCL(D, 4, GCLConfig(iterations=2, heads=2)).double().eval()
    B = C * m
    h, w = gcl.reduce(g.x), g.edge_attr
    for layer in gcl.layers:
        h, w = layer(h, w, g)
        W = w.view(B, B, D)
        torch.testing.assert_close(W, W.transpose(0, 1))
    lam, logits = gcl(g)
    L = lam.view(B, B, D)
    torch.testing.assert_close(L, L.transpose(0, 1))
    assert ((lam > 0) & (lam < 1)).all() and logits.shape == (B, 4)


def test_readout_batchnorms_have_unit_weight_and_frozen_zero_bias():
    gcl = GCL(8, 3, GCLConfig(iterations=1, heads=2))
    for bn in (gcl.edge_bn, gcl.node_bn):
        assert (bn.weight == 1).all() and (bn.bias == 0).all() and not bn.bias.requires_grad


@pytest.mark.parametrize("n2n", ["attention", "gat", "mean", "none"])
@pytest.mark.parametrize("e2n", ["sum", "mean", "none"])
@pytest.mark.parametrize("n2e", ["attention", "mlp", "none"])
def test_every_layer_combination_runs_forward_and_backward(n2n, e2n, n2e):
    C, m, D = 3, 2, 8
    z, y = random_batch(C, m, D, dtype=torch.float32)
    z.requires_grad_(True)
    gcl = GCL(D, 5, GCLConfig(iterations=2, heads=2, node_to_node=n2n, edge_to_node=e2n, node_to_edge=n2e))
    lam, logits = gcl(build_batch_graph(z, y, C, m))
    assert lam.shape == (C * m * C * m, D) and logits.shape == (C * m, 5)
    (lam.sum() + F.cross_entropy(logits, y)).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    for name, p in gcl.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_none_node_to_edge_keeps_initial_correlations():
    g = _graph(2, 2, 6)
    gcl = GCL(6, 2, GCLConfig(iterations=2, heads=2, node_to_edge="none")).double().eval()
    h, w = gcl.reduce(g.x), g.edge_attr
    for layer in gcl.layers:
        h, w2 = layer(h, w, g)
        assert w2 is w


def test_user_registered_layer_is_selected_by_name():
    calls = []

    class ScaledIdentity(torch.nn.Module):  # a plain module: subclassing the role's base is optional
        def __init__(self, dim, *, heads=1, dropout=0.0):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(0.5))

        def forward(self, h, data):
            calls.append(h.shape)
            return self.scale * h

    with NODE_TO_NODE.registered("test_scaled_identity", ScaledIdentity):
        gcl = GCL(8, 3, GCLConfig(iterations=2, heads=2, node_to_node="test_scaled_identity"))
    assert "test_scaled_identity" not in NODE_TO_NODE
    z, y = random_batch(2, 2, 8, dtype=torch.float32)
    gcl(build_batch_graph(z, y, 2, 2))
    assert calls == [(4, 8), (4, 8)]
    assert isinstance(gcl.layers[0].node_update.node_to_node, ScaledIdentity)


@pytest.mark.parametrize(
    "kwargs, registry",
    [
        ({"node_to_node": "nope"}, NODE_TO_NODE),
        ({"edge_to_node": "nope"}, EDGE_TO_NODE),
        ({"node_to_edge": "nope"}, NODE_TO_EDGE),
    ],
)
def test_unknown_layer_name_lists_registered(kwargs, registry):
    with pytest.raises(ValueError, match="registered: " + ", ".join(registry.names())):
        GCL(8, 3, GCLConfig(**kwargs))


def test_bad_gcl_arguments():
    with pytest.raises(ValueError, match="divisible"):
        GCL(10, 3, GCLConfig(heads=4))
    with pytest.raises(ValueError, match="iterations"):
        GCL(8, 3, GCLConfig(iterations=0))
    gcl = GCL(8, 3, GCLConfig(heads=2))
    z, y = random_batch(2, 2, 6, dtype=torch.float32)
    with pytest.raises(ValueError, match="size 6, GCL expects 8"):
        gcl(build_batch_graph(z, y, 2, 2))
