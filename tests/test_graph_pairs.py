"""Symmetric edges computed once per unordered pair: equal to the ordered computation."""
import copy

import pytest
import torch
import torch.nn.functional as F
from core_helpers import random_batch
from release_keys import release_state_dict
from torch import nn

from gcahng.config import PRESETS_DIR, TrainConfig, load_config
from gcahng.errors import ConfigError, InputError
from gcahng.generator import HardNegativeGenerator
from gcahng.graph import (
    EDGE_TO_NODE,
    GCL,
    NODE_TO_EDGE,
    NodeToEdgeLayer,
    UnorderedPairs,
    build_batch_graph,
    pair_batch_norm,
    pair_graph,
)
from gcahng.hyperparameters import GCLConfig, GeneratorConfig

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}


def _ordered(gcl: GCL) -> GCL:
    """A copy of ``gcl`` that computes every ordered edge: its node-to-edge layers no longer declare symmetry."""
    ordered = copy.deepcopy(gcl)
    for layer in ordered.layers:
        layer.edge_update.node_to_edge.preserves_symmetry = False
    return ordered


def _assert_equal(actual, expected, dtype):
    torch.testing.assert_close(actual, expected, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_pairs_index_every_ordered_edge_once_per_direction():
    B = 5
    pairs = UnorderedPairs.build(B)
    assert pairs.num_pairs == B * (B + 1) // 2 and pairs.num_edges == B * B
    i, j = pairs.edge_index
    assert (i <= j).all() and (i[:B] == j[:B]).all() and (i[B:] < j[B:]).all()
    assert torch.equal(pairs.ordered_edge, i * B + j)
    for e in range(B * B):  # edge ij and edge ji are the same pair {i, j}
        a, b = divmod(e, B)
        p = int(pairs.edge_pair[e])
        assert {int(i[p]), int(j[p])} == {a, b}
    x = torch.randn(pairs.num_pairs, 3, dtype=torch.float64)
    expanded = pairs.expand(x)  # (B*B, 3)
    assert torch.equal(expanded.view(B, B, 3), expanded.view(B, B, 3).transpose(0, 1))
    torch.testing.assert_close(pairs.sum_at_nodes(x), expanded.view(B, B, 3).sum(1), atol=1e-12, rtol=0)
    torch.testing.assert_close(pairs.sum_over_edges(x), expanded.sum(0), atol=1e-12, rtol=0)


def _pair_rows(ordered: torch.Tensor, pairs: UnorderedPairs) -> torch.Tensor:
    return ordered.index_select(0, pairs.ordered_edge)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_pair_batch_norm_weights_self_pairs_once_and_other_pairs_twice(momentum):
    B, D = 6, 4
    pairs = UnorderedPairs.build(B)
    x = torch.randn(pairs.num_pairs, D, dtype=torch.float64) * 3 + 1
    ours, reference = (nn.BatchNorm1d(D, momentum=momentum).double() for _ in range(2))
    with torch.no_grad():
        for bn in (ours, reference):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    reference.load_state_dict(ours.state_dict())
    for _ in range(2):  # the running statistics of two updates
        _assert_equal(pair_batch_norm(ours, x, pairs), _pair_rows(reference(pairs.expand(x)), pairs), torch.float64)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(reference, name), atol=1e-12, rtol=0)
    ours.eval(), reference.eval()
    _assert_equal(pair_batch_norm(ours, x, pairs), reference(x), torch.float64)


LAYER_SETS = [
    {},  # the reference layers
    {"edge_to_node": "mean", "node_to_node": "gat"},
    {"node_to_edge": "none", "node_to_node": "mean"},
    {"edge_to_node": "none"},
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layers", LAYER_SETS)
def test_eval_mode_pairs_equal_the_ordered_computation(dtype, layers):
    C, m, D = 4, 3, 16
    torch.manual_seed(0)
    gcl = GCL(D, 7, GCLConfig(iterations=2, heads=2, **layers)).to(dtype).eval()
    ordered = _ordered(gcl)
    z, y = random_batch(C, m, D, dtype=dtype)
    graph = build_batch_graph(z, y, C, m)
    assert gcl.pair_graph(graph) is not None and ordered.pair_graph(graph) is None
    lam, logits = gcl(graph)
    lam_ref, logits_ref = ordered(graph)
    assert lam.shape == lam_ref.shape == (C * m * C * m, D)
    _assert_equal(lam, lam_ref, dtype)
    _assert_equal(logits, logits_ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_training_without_dropout_gives_the_ordered_losses_gradients_and_statistics(dtype):
    C, m, D = 3, 3, 8
    torch.manual_seed(1)
    gcl = GCL(D, 5, GCLConfig(iterations=2, heads=2, dropout=0.0)).to(dtype).train()
    ordered = _ordered(gcl)
    z, y = random_batch(C, m, D, dtype=dtype)
    grads = []
    for model in (gcl, ordered):
        zz = z.clone().requires_grad_(True)
        lam, logits = model(build_batch_graph(zz, y, C, m))
        (lam.pow(2).mean() + F.cross_entropy(logits, y)).backward()
        grads.append((lam.detach(), logits.detach(), zz.grad))
    for ours, reference in zip(*grads, strict=True):
        torch.testing.assert_close(ours, reference, atol=10 * TOLERANCE[dtype], rtol=10 * TOLERANCE[dtype])
    for (name, p), q in zip(gcl.named_parameters(), ordered.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=10 * TOLERANCE[dtype], rtol=1e-5, msg=name)
    torch.testing.assert_close(gcl.edge_bn.running_var, ordered.edge_bn.running_var)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("file, iterations, heads", [("resnet50_K2.tsv", 2, 4), ("resnet50_K1.tsv", 1, 2)])
def test_reference_weights_from_the_release_layout_give_the_ordered_outputs(dtype, file, iterations, heads):
    C, m, D = 6, 3, 512
    gen = HardNegativeGenerator(D, 100, GeneratorConfig(GCLConfig(iterations=iterations, heads=heads)))
    gen.load_reference_state_dict(release_state_dict(file))
    gcl = gen.gcl.to(dtype).eval()
    z, y = random_batch(C, m, D, seed=3, dtype=dtype)
    graph = build_batch_graph(z, y, C, m)
    lam, logits = gcl(graph)
    lam_ref, logits_ref = _ordered(gcl)(graph)
    _assert_equal(lam, lam_ref, dtype)
    _assert_equal(logits, logits_ref, dtype)


def test_paired_dropout_keeps_lambda_symmetric_in_training_and_independent_does_not():
    C, m, D = 3, 2, 8
    B = C * m
    z, y = random_batch(C, m, D)
    graph = build_batch_graph(z, y, C, m)
    asymmetry = {}
    for mode in ("paired", "independent"):
        torch.manual_seed(0)
        gcl = GCL(D, 4, GCLConfig(iterations=2, heads=2, dropout=0.5, edge_dropout=mode)).double().train()
        assert (gcl.pair_graph(graph) is None) == (mode == "independent")
        square = gcl(graph)[0].view(B, B, D)
        asymmetry[mode] = float((square - square.transpose(0, 1)).abs().max().detach())
        torch.manual_seed(1)
        assert not torch.equal(gcl(graph)[0], square.reshape(B * B, D))  # dropout is drawn: another draw differs
    assert asymmetry["paired"] == 0.0
    assert asymmetry["independent"] > 1e-3


class _RecordingSum(nn.Module):
    """A plugin edge-to-node layer without the declaration: ``o_i = sum_j w_ij``; records its rows."""

    rows: list[int] = []

    def __init__(self, dim, *, heads=1, dropout=0.0):
        super().__init__()

    def forward(self, h, w, data):
        type(self).rows.append(w.shape[0])
        B = h.shape[0]
        return w.view(B, B, -1).sum(1)


class _SymmetricMix(NodeToEdgeLayer):
    """A plugin node-to-edge layer that declares symmetry: ``a_ij = GELU(P (n_i + n_j) + R w_ij)``."""

    preserves_symmetry = True
    rows: list[int] = []

    def __init__(self, dim, *, heads=1, dropout=0.0):
        super().__init__()
        self.lin_node = nn.Linear(dim, dim)
        self.lin_edge = nn.Linear(dim, dim)

    def forward(self, h, w, data):
        type(self).rows.append(w.shape[0])
        n = self.lin_node(h)
        src, dst = data.edge_index
        return F.gelu(n[src] + n[dst] + self.lin_edge(w))


def test_a_plugin_layer_without_the_declaration_makes_gcl_compute_every_ordered_edge():
    C, m, D = 3, 2, 8
    z, y = random_batch(C, m, D)
    graph = build_batch_graph(z, y, C, m)
    with EDGE_TO_NODE.registered("test_recording_sum", _RecordingSum):
        gcl = GCL(D, 4, GCLConfig(iterations=2, heads=2, edge_to_node="test_recording_sum")).double().eval()
    assert gcl.pair_graph(graph) is None
    _RecordingSum.rows.clear()
    gcl(graph)
    assert _RecordingSum.rows == [C * m * C * m] * 2


def test_a_plugin_layer_can_declare_symmetry_and_gets_the_pairs():
    C, m, D = 3, 2, 8
    B = C * m
    z, y = random_batch(C, m, D)
    graph = build_batch_graph(z, y, C, m)
    with NODE_TO_EDGE.registered("test_symmetric_mix", _SymmetricMix):
        gcl = GCL(D, 4, GCLConfig(iterations=2, heads=2, node_to_edge="test_symmetric_mix")).double().eval()
    _SymmetricMix.rows.clear()
    lam, logits = gcl(graph)
    assert _SymmetricMix.rows == [B * (B + 1) // 2] * 2
    lam_ref, logits_ref = _ordered(gcl)(graph)
    assert _SymmetricMix.rows[2:] == [B * B] * 2
    _assert_equal(lam, lam_ref, torch.float64)
    _assert_equal(logits, logits_ref, torch.float64)


def test_mlp_node_to_edge_does_not_declare_symmetry():
    C, m, D = 3, 2, 8
    z, y = random_batch(C, m, D)
    graph = build_batch_graph(z, y, C, m)
    assert NODE_TO_EDGE.get("attention").preserves_symmetry and not NODE_TO_EDGE.get("mlp").preserves_symmetry
    assert GCL(D, 4, GCLConfig(heads=2, node_to_edge="mlp")).eval().pair_graph(graph) is None


def test_a_graph_with_asymmetric_edge_features_is_computed_ordered():
    C, m, D = 3, 2, 8
    z, y = random_batch(C, m, D)
    graph = build_batch_graph(z, y, C, m)
    assert pair_graph(graph) is not None
    graph.edge_attr = graph.edge_attr.clone()
    graph.edge_attr[1] += 0.5  # edge 0 -> 1 only
    assert pair_graph(graph) is None
    torch.manual_seed(0)
    gcl = GCL(D, 4, GCLConfig(heads=2)).double().eval()
    lam, _ = gcl(graph)
    torch.testing.assert_close(lam, _ordered(gcl)(graph)[0], atol=0, rtol=0)


def test_edge_dropout_is_a_checked_choice_that_the_presets_pin():
    assert TrainConfig().edge_dropout == "paired" and TrainConfig().gcl.edge_dropout == "paired"
    assert TrainConfig(edge_dropout="independent").gcl == GCLConfig(edge_dropout="independent")
    with pytest.raises(ConfigError, match=r"'edge_dropout' must be 'paired' \| 'independent', got 'per-edge'"):
        TrainConfig(edge_dropout="per-edge")
    with pytest.raises(InputError, match="unknown edge dropout 'per-edge'; choose one of paired, independent"):
        GCL(8, 3, GCLConfig(heads=2, edge_dropout="per-edge"))
    assert load_config(PRESETS_DIR / "cub200_resnet50.yaml").edge_dropout == "independent"
    assert load_config(PRESETS_DIR / "digits.yaml").edge_dropout == "paired"
