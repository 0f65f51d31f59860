"""The recorded edge layout of the batch graph, and the consumers that depend on it (CACAI, J_div)."""
import pytest
import torch
from core_helpers import random_batch
from torch_geometric.data import Data

from gcahng.cacai import cacai
from gcahng.errors import InputError
from gcahng.graph import COMPLETE_ROW_MAJOR, GraphLayout, build_batch_graph
from gcahng.losses import diversity_loss

C, M, D = 3, 2, 4
B = C * M


def _batch():
    z, y = random_batch(C, M, D, seed=1)
    return z, y, build_batch_graph(z, y, C, M), torch.rand(B * B, D, dtype=torch.float64)


def _consumers(z, y, graph, lam):
    """Both consumers of lambda, each called on (graph, lam)."""
    return {
        "CACAI": lambda: cacai(z, lam, 0.5, y, C, M, graph=graph, generator=torch.Generator().manual_seed(0)),
        "the diversity loss J_div": lambda: diversity_loss(lam, graph),
    }


def test_build_batch_graph_records_its_layout():
    _, _, graph, _ = _batch()
    assert graph.layout == GraphLayout(COMPLETE_ROW_MAJOR, B, C, M)
    with pytest.raises(AttributeError):
        graph.layout.num_nodes = 3  # frozen


def test_the_consumers_accept_the_built_graph():
    z, y, graph, lam = _batch()
    for call in _consumers(z, y, graph, lam).values():
        call()  # no error


@pytest.mark.parametrize("consumer", ["CACAI", "the diversity loss J_div"])
def test_reordered_edges_are_an_error(consumer):
    z, y, graph, lam = _batch()
    perm = torch.randperm(B * B, generator=torch.Generator().manual_seed(0))
    graph.edge_index, graph.edge_attr = graph.edge_index[:, perm], graph.edge_attr[perm]
    with pytest.raises(InputError, match=rf"^{consumer} needs the edges in the {COMPLETE_ROW_MAJOR} order.*reordered"):
        _consumers(z, y, graph, lam)[consumer]()


@pytest.mark.parametrize("consumer", ["CACAI", "the diversity loss J_div"])
def test_dropped_edges_are_an_error(consumer):
    z, y, graph, lam = _batch()
    keep = graph.edge_index[0] != graph.edge_index[1]  # a graph without its self-loops
    graph.edge_index = graph.edge_index[:, keep]
    with pytest.raises(InputError, match=rf"this graph's {B * B - B} edges were reordered or dropped"):
        _consumers(z, y, graph, lam[keep])[consumer]()


@pytest.mark.parametrize("consumer", ["CACAI", "the diversity loss J_div"])
def test_lambda_with_a_row_per_kept_edge_of_a_layer_is_an_error(consumer):
    z, y, graph, lam = _batch()
    with pytest.raises(InputError, match=rf"one row per edge, \({B * B}, D\).*got \({B * B - B}, {D}\)"):
        _consumers(z, y, graph, lam[B:])[consumer]()  # as if a layer dropped B edges


@pytest.mark.parametrize("consumer", ["CACAI", "the diversity loss J_div"])
def test_a_graph_without_the_layout_record_is_an_error(consumer):
    z, y, graph, lam = _batch()
    bare = Data(x=graph.x, edge_index=graph.edge_index, edge_attr=graph.edge_attr)  # same edges, no record
    with pytest.raises(InputError, match=rf"{consumer} needs the {COMPLETE_ROW_MAJOR} batch graph.*none recorded"):
        _consumers(z, y, bare, lam)[consumer]()


def test_cacai_checks_the_graph_matches_the_batch_and_needs_it_with_lambda():
    z, y, graph, lam = _batch()
    other = build_batch_graph(z[:4], torch.tensor([0, 1, 0, 1]), 2, 2)  # a graph of another batch
    with pytest.raises(InputError, match="graph built for C=2, m=2, but the batch has C=3, m=2"):
        cacai(z, lam, 0.5, y, C, M, graph=other)
    with pytest.raises(InputError, match=r"CACAI needs the batch graph lambda was computed on \(graph=\.\.\.\)"):
        cacai(z, lam, 0.5, y, C, M)
    cacai(z, None, 0.5, y, C, M)  # lambda = 1 (HDML) needs no graph
