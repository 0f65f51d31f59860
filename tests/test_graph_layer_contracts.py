"""The layer contracts: registration checks, reset_parameters() and repr of every built-in layer."""
import pytest
import torch
from torch import nn

from gcahng.errors import InputError
from gcahng.generator import HardNegativeGenerator
from gcahng.graph import (
    EDGE_TO_NODE,
    GCL,
    NODE_TO_EDGE,
    NODE_TO_NODE,
    EdgeToNodeLayer,
    NodeToEdgeLayer,
    NodeToNodeLayer,
    Skip,
)
from gcahng.hyperparameters import GCLConfig, GeneratorConfig

ROLES = {"node-to-node": (NODE_TO_NODE, NodeToNodeLayer), "edge-to-node": (EDGE_TO_NODE, EdgeToNodeLayer),
         "node-to-edge": (NODE_TO_EDGE, NodeToEdgeLayer)}
BUILT_IN = [(role, name) for role, (registry, _) in ROLES.items() for name in registry.names()]


def _states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("role, name", BUILT_IN)
def test_every_built_in_layer_subclasses_its_role(role, name):
    registry, base = ROLES[role]
    assert issubclass(registry.get(name), base)


@pytest.mark.parametrize("role, name", [(r, n) for r, n in BUILT_IN if n != "none"])
def test_reset_parameters_redraws_like_a_fresh_layer(role, name):
    cls = ROLES[role][0].get(name)
    torch.manual_seed(0)
    fresh = cls(8, heads=2, dropout=0.1)
    torch.manual_seed(1)
    layer = cls(8, heads=2, dropout=0.1)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    assert not _states_equal(layer, fresh)  # another seed: other values
    torch.manual_seed(0)
    layer.reset_parameters()
    assert all(not torch.equal(before[k], v) for k, v in layer.state_dict().items() if v.std() > 0)  # really re-drawn
    assert _states_equal(layer, fresh)


@pytest.mark.parametrize("kwargs", [{}, {"node_to_node": "gat", "edge_to_node": "mean", "node_to_edge": "mlp"},
                                    {"node_to_node": "mean", "node_to_edge": "none"}])
def test_generator_and_gcl_reset_like_fresh_ones(kwargs):
    torch.manual_seed(0)
    fresh = HardNegativeGenerator(8, 5, GeneratorConfig(GCLConfig(heads=2, **kwargs)))
    torch.manual_seed(1)
    gen = HardNegativeGenerator(8, 5, GeneratorConfig(GCLConfig(heads=2, **kwargs)))
    gen.gcl.edge_bn.running_mean.fill_(3.0)  # statistics are reset too
    torch.manual_seed(0)
    gen.reset_parameters()
    assert _states_equal(gen, fresh)
    torch.manual_seed(0)
    gcl = GCL(8, 5, GCLConfig(heads=2, **kwargs))
    assert _states_equal(gcl, fresh.gcl)  # the generator builds its GCL first
    gcl.node_classifier.weight.data.zero_()
    torch.manual_seed(0)
    gcl.reset_parameters()
    assert _states_equal(gcl, fresh.gcl)


@pytest.mark.parametrize("base", [nn.Module, NodeToNodeLayer])
def test_reset_walks_into_a_plugin_layer_without_reset_parameters(base):
    class Plain(base):  # no reset_parameters of its own: its Linear is reset
        def __init__(self, dim, *, heads=1, dropout=0.0):
            super().__init__()
            self.lin = nn.Linear(dim, dim)

        def forward(self, h, data):
            return self.lin(h)

    with NODE_TO_NODE.registered("test_plain", Plain):
        torch.manual_seed(0)
        fresh = GCL(8, 5, GCLConfig(heads=2, node_to_node="test_plain"))
        gcl = GCL(8, 5, GCLConfig(heads=2, node_to_node="test_plain"))
        torch.manual_seed(0)
        gcl.reset_parameters()
        assert _states_equal(gcl, fresh)


@pytest.mark.parametrize("role, name, expected", [
    ("node-to-node", "attention", "NodeAttention(8, heads=2)"),
    ("node-to-node", "gat", "GATNodeToNode(8, heads=2)"),
    ("node-to-node", "mean", "MeanNodeToNode(8)"),
    ("edge-to-node", "sum", "SumEdgeToNode(8)"),
    ("edge-to-node", "mean", "MeanEdgeToNode(8)"),
    ("node-to-edge", "attention", "EdgeAttention(8, dropout=0.25)"),
    ("node-to-edge", "mlp", "MLPNodeToEdge(8)"),
    ("node-to-edge", "none", "Skip()"),
])
def test_repr_names_the_arguments_the_layer_uses(role, name, expected):
    assert repr(ROLES[role][0].get(name)(8, heads=2, dropout=0.25)) == expected


def test_gcl_repr_shows_its_size_and_layers():
    text = repr(GCL(8, 5, GCLConfig(iterations=3, heads=2, node_to_edge="mlp")))
    assert "GCL(\n  dim=8, num_classes=5, iterations=3" in text
    assert "(node_to_node): NodeAttention(8, heads=2)" in text and "(node_to_edge): MLPNodeToEdge(8)" in text


def test_skip_is_every_role_and_returns_none():
    for _, base in ROLES.values():
        assert isinstance(Skip(8), base)
    assert Skip(8)(torch.zeros(2, 8), None) is None


class _NotAModule:
    def __init__(self, dim, *, heads=1, dropout=0.0):
        pass


class _NoDropout(nn.Module):
    def __init__(self, dim, *, heads=1):
        super().__init__()


class _NeedsAnotherArgument(nn.Module):
    def __init__(self, dim, width, *, heads=1, dropout=0.0):
        super().__init__()


class _TakesEverything(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()


@pytest.mark.parametrize("registry", [NODE_TO_NODE, EDGE_TO_NODE, NODE_TO_EDGE])
def test_registration_checks_the_layer_contract(registry):
    names = registry.names()
    with pytest.raises(InputError, match=rf"a {registry.role} must be a subclass of torch.nn.modules.module.Module"):
        registry.register("test_bad")(_NotAModule)
    with pytest.raises(InputError, match=rf"{registry.role} _NoDropout must be constructible as "
                                         r"_NoDropout\(dim, \*, heads, dropout\): .*'dropout'"):
        registry.register("test_bad")(_NoDropout)
    with pytest.raises(InputError, match=r"_NeedsAnotherArgument\(dim, \*, heads, dropout\): .*'width'"):
        registry.register("test_bad")(_NeedsAnotherArgument)
    assert registry.names() == names  # nothing was added
    with registry.registered("test_any", _TakesEverything):
        assert registry.get("test_any") is _TakesEverything
    assert registry.names() == names
