"""The pieces of the distributed step in one process: anchor-slot CACAI and N-pair, the
global-statistics batch norm, the context, and GCL on a rank's rows (a world of one)."""
import pytest
import torch
import torch.distributed as dist
from core_helpers import chunk_major_labels, random_batch
from torch import nn

from gcahng.cacai import cacai
from gcahng.config import TrainConfig
from gcahng.distributed import DistContext
from gcahng.distributed.graph import build_rows_graph
from gcahng.distributed.norm import GlobalBatchNorm1d, use_global_statistics
from gcahng.errors import ConfigError, InputError
from gcahng.graph import GCL, build_batch_graph
from gcahng.hyperparameters import GCLConfig
from gcahng.losses import NPairLoss

C, M, D = 6, 3, 8
PARTS = [slice(0, 2), slice(2, 4), slice(4, 6)]


@pytest.mark.parametrize("weighting", ["shared", "per-pair"])
def test_cacai_by_anchor_slots_gives_the_rows_of_the_whole_batch(weighting):
    z, y = random_batch(C, M, D, seed=1)
    lam = torch.rand(C * M * C * M, D, dtype=z.dtype, generator=torch.Generator().manual_seed(2))
    graph = build_batch_graph(z, y, C, M)
    full = cacai(z, lam, 0.7, y, C, M, graph=graph, random_weighting=weighting,
                 generator=torch.Generator().manual_seed(3))
    lam_rows = lam.view(M, C, M * C, D)
    whole = {k: getattr(full, k).view(M, C, C, *getattr(full, k).shape[1:]) for k in
             ("embeddings", "labels", "own_class", "anchor_index")}
    for part in PARTS:
        rows = _RowsStub(lam_rows[:, part].reshape(-1, D), part)
        got = cacai(z, rows.lam, 0.7, y, C, M, graph=rows, random_weighting=weighting,
                    generator=torch.Generator().manual_seed(3), anchor_slots=part)
        for name, want in whole.items():
            value = getattr(got, name).view(M, part.stop - part.start, C, *want.shape[3:])
            torch.testing.assert_close(value, want[:, part], rtol=0, atol=1e-15)


class _RowsStub:
    """A graph object with the RowsLayout of ``part``'s rows (what cacai checks)."""

    def __init__(self, lam, part):
        from gcahng.distributed.graph import OWN_ROWS, RowsLayout

        self.lam = lam
        self.layout = RowsLayout(OWN_ROWS, C * M, C, M, part.start, part.stop)


def test_cacai_by_anchor_slots_refuses_a_whole_graph():
    z, y = random_batch(C, M, D)
    lam = torch.rand(C * M * C * M, D, dtype=z.dtype)
    with pytest.raises(InputError, match="RowsGraph"):
        cacai(z, lam, 0.7, y, C, M, graph=build_batch_graph(z, y, C, M), anchor_slots=slice(0, 2))


def test_npair_shares_by_anchor_slots_sum_to_the_loss():
    z, y = random_batch(C, M, D, seed=4)
    loss = NPairLoss()
    graph = build_batch_graph(z, y, C, M)
    lam = torch.rand(C * M * C * M, D, dtype=z.dtype, generator=torch.Generator().manual_seed(5))
    neg = cacai(z, lam, 0.8, y, C, M, graph=graph, generator=torch.Generator().manual_seed(6))
    shares, synthetic = 0.0, 0.0
    for part in PARTS:
        shares = shares + loss(z, y, C, M, anchor_slots=part)
        rows = _RowsStub(lam.view(M, C, M * C, D)[:, part].reshape(-1, D), part)
        part_neg = cacai(z, rows.lam, 0.8, y, C, M, graph=rows, generator=torch.Generator().manual_seed(6),
                         anchor_slots=part)
        synthetic = synthetic + loss.synthetic(z, part_neg, y, C, M, anchor_slots=part)
    torch.testing.assert_close(shares, loss(z, y, C, M), rtol=1e-13, atol=0)
    torch.testing.assert_close(synthetic, loss.synthetic(z, neg, y, C, M), rtol=1e-13, atol=0)


def test_global_batch_norm_is_the_module_it_replaces_in_one_process():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    twin = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    twin.load_state_dict(net.state_dict())
    keys = list(net.state_dict())
    weight = net[1].weight
    assert use_global_statistics(net, DistContext(0, 1)) == 1
    assert isinstance(net[1], GlobalBatchNorm1d) and net[1].weight is weight  # same tensors
    assert list(net.state_dict()) == keys
    x = torch.randn(7, 5)
    torch.testing.assert_close(net(x), twin(x), rtol=0, atol=0)
    torch.testing.assert_close(net[1].running_var, twin[1].running_var, rtol=0, atol=0)
    assert use_global_statistics(net, None) == 1 and net[1].dist is None


def test_context_and_config_choice():
    assert DistContext(1, 2).is_global and not DistContext(0, 2, graph_scope="local").is_global
    assert not DistContext(0, 1).is_global
    with pytest.raises(InputError, match="rank 2"):
        DistContext(2, 2)
    with pytest.raises(InputError, match="graph_scope"):
        DistContext(0, 2, graph_scope="everywhere")
    assert TrainConfig().graph_scope == "global"
    with pytest.raises(ConfigError, match="graph_scope"):
        TrainConfig(graph_scope="everywhere")


@pytest.fixture
def world_of_one(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    yield DistContext(0, 1)
    dist.destroy_process_group()


@pytest.mark.parametrize("layers", [("attention", "sum", "attention"), ("gat", "mean", "mlp"),
                                    ("mean", "none", "none")])
def test_gcl_on_the_rows_of_a_world_of_one_is_gcl_on_the_graph(world_of_one, layers):
    torch.manual_seed(0)
    n2n, e2n, n2e = layers
    gcl = GCL(D, 5, GCLConfig(iterations=2, heads=2, node_to_node=n2n, edge_to_node=e2n, node_to_edge=n2e,
                              dropout=0.0)).double()
    z, _ = random_batch(C, M, D, seed=7)
    z.requires_grad_(True)
    y = chunk_major_labels(C, M, [4, 0, 3, 1, 2, 5])
    lam, logits = gcl(build_batch_graph(z, y, C, M))
    rows = build_rows_graph(z, y, C, M, world_of_one)
    lam_rows, logits_rows = gcl(rows)
    torch.testing.assert_close(lam_rows, lam, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(logits_rows, logits, rtol=1e-12, atol=1e-13)
    (grad,) = torch.autograd.grad(lam.sum() + logits.sum(), z)
    (grad_rows,) = torch.autograd.grad(lam_rows.sum() + logits_rows.sum(), z)
    torch.testing.assert_close(grad_rows, grad, rtol=1e-10, atol=1e-12)
