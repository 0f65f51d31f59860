"""The three message-passing roles of GCL: one base class and one registry per role, so that
layers are swapped by name.

Every layer class is constructed as ``cls(dim, heads=H, dropout=p)`` (a layer ignores the
arguments it does not need, and its docstring says so) and called as its role's base class
says (``data`` is the batch graph of :func:`gcahng.graph.build_batch_graph`; returning
``None`` removes that sub-step: no residual, no norm):

- :class:`NodeToNodeLayer`: ``layer(h, data) -> o``, ``h`` (B, D) node states, ``o`` (B, D) or ``None``;
- :class:`EdgeToNodeLayer`: ``layer(h, w, data) -> o``, ``w`` (E, D) edge states, ``o`` (B, D) or ``None``;
- :class:`NodeToEdgeLayer`: ``layer(h, w, data) -> a``, ``a`` (E, D) in the edge order of
  ``data.edge_index``, or ``None``.

Register your own layer from your own code; subclassing the role's base class is recommended
(it documents the contract and gives ``reset_parameters``), but any ``nn.Module`` with that
constructor and call works::

    from gcahng.graph import NODE_TO_NODE, NodeToNodeLayer

    @NODE_TO_NODE.register("my_attention")
    class MyAttention(NodeToNodeLayer): ...

    GCL(512, 100, GCLConfig(node_to_node="my_attention"))

Registration checks that the class is an ``nn.Module`` subclass constructible as
``cls(dim, heads=H, dropout=p)``.

Symmetric edges: the reference layers keep every edge state symmetric (``w_ij = w_ji``), so GCL
computes each unordered pair ``{i, j}`` once when every edge-to-node and node-to-edge layer of
it declares ``preserves_symmetry = True`` (a class attribute; the default ``False``, also for a
plain ``nn.Module``, makes GCL compute all ``B^2`` ordered edges). Such a layer is then called on
the pair graph of :func:`gcahng.graph.pairs.pair_graph`: ``data.edge_index`` holds the
``B(B+1)/2`` pairs ``(i, j)``, ``i <= j``, ``w`` one row per pair, and ``data.pairs`` the
:class:`~gcahng.graph.pairs.UnorderedPairs` that sums or expands pair rows. Node-to-node layers
never see edge states and always get the ordered graph.
"""
from __future__ import annotations

from functools import partial

from torch import Tensor, nn
from torch_geometric.data import Data

from gcahng.registry import Registry, check_module_class


def reset_parameters_in_order(module: nn.Module) -> None:
    """Re-initialise ``module``'s parameters child by child in registration order: a child with
    ``reset_parameters()`` resets itself, any other is walked into. When children are
    registered in the order they were built (as in GCL) the result equals a fresh module built
    under the same seed."""
    for child in module.children():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
        else:
            reset_parameters_in_order(child)


class GCLLayer(nn.Module):
    """What the layers of every role share: the constructor ``cls(dim, *, heads, dropout)``,
    ``reset_parameters()`` (re-draws every parameter as a freshly built layer would: under the
    same seed the result equals a new layer) and a ``repr`` naming the arguments it uses."""

    def reset_parameters(self) -> None:
        """By default :func:`reset_parameters_in_order`; a layer that re-initialises after
        building (the built-in ``xavier_uniform_`` projections) overrides it."""
        reset_parameters_in_order(self)


class NodeToNodeLayer(GCLLayer):
    """Node-to-node role (method.md §3.1 step 1): messages between nodes."""

    def forward(self, h: Tensor, data: Data) -> Tensor | None:
        """``h`` (B, D) node states -> ``o`` (B, D), or ``None`` to skip the sub-step."""
        raise NotImplementedError


class EdgeToNodeLayer(GCLLayer):
    """Edge-to-node role (method.md §3.1 step 2): edges send their states to nodes.

    ``preserves_symmetry = True`` declares that the layer also accepts the pair graph (``data.pairs``
    set, ``w`` (P, D) one row per unordered pair) and then returns what it returns for the ordered
    graph with each pair's row on both of its edges.
    """

    preserves_symmetry: bool = False

    def forward(self, h: Tensor, w: Tensor, data: Data) -> Tensor | None:
        """``h`` (B, D), ``w`` (E, D) edge states -> ``o`` (B, D), or ``None`` to skip the sub-step."""
        raise NotImplementedError


class NodeToEdgeLayer(GCLLayer):
    """Node-to-edge role (method.md §3.2 step 2): each edge gathers from its endpoints.

    ``preserves_symmetry = True`` declares that the output of an edge depends only on that edge's
    state and its endpoints' states, symmetrically: ``a_ij = a_ji`` whenever ``w_ij = w_ji`` (in
    evaluation mode; dropout drawn on the pair graph is drawn once per pair). GCL may then call it
    on the pair graph.
    """

    preserves_symmetry: bool = False

    def forward(self, h: Tensor, w: Tensor, data: Data) -> Tensor | None:
        """``h`` (B, D), ``w`` (E, D) -> ``a`` (E, D) in the edge order of ``data.edge_index``
        (one row per edge: CACAI relies on it), or ``None`` to leave the edges as they are."""
        raise NotImplementedError


def check_layer_class(obj: object, role: str) -> None:
    """Raise :class:`~gcahng.errors.InputError` unless ``obj`` is an ``nn.Module`` subclass
    constructible as ``obj(dim, heads=H, dropout=p)``."""
    check_module_class(
        obj, role, nn.Module, call="dim, *, heads, dropout", args=(8,), kwargs={"heads": 1, "dropout": 0.0}
    )


def _layer_registry(role: str) -> Registry[type[nn.Module]]:
    return Registry(role, check=partial(check_layer_class, role=role))


NODE_TO_NODE = _layer_registry("node-to-node layer")
EDGE_TO_NODE = _layer_registry("edge-to-node layer")
NODE_TO_EDGE = _layer_registry("node-to-edge layer")


class Skip(NodeToNodeLayer, EdgeToNodeLayer, NodeToEdgeLayer):
    """The ``none`` layer of every role: contributes nothing, so its sub-step is skipped.
    Uses none of its arguments and has no parameters."""

    preserves_symmetry = True

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()

    def forward(self, *args, **kwargs) -> None:
        return None

    def reset_parameters(self) -> None:
        pass  # no parameters

    def __repr__(self) -> str:
        return "Skip()"


for _registry in (NODE_TO_NODE, EDGE_TO_NODE, NODE_TO_EDGE):
    _registry.register("none")(Skip)
