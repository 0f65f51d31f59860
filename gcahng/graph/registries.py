"""One registry per message-passing role of GCL, so layers are swapped by name.

Every layer class is constructed as ``cls(dim, heads=H, dropout=p)`` (a layer ignores the
arguments it does not need) and called as:

- node-to-node: ``layer(h, data) -> o`` with ``h`` (B, D) node states, ``o`` (B, D) or ``None``;
- edge-to-node: ``layer(h, w, data) -> o`` with ``w`` (E, D) edge states, ``o`` (B, D) or ``None``;
- node-to-edge: ``layer(h, w, data) -> a`` with ``a`` (E, D) in the edge order of
  ``data.edge_index``, or ``None``.

``data`` is the batch graph of :func:`gcahng.graph.build_batch_graph` (``edge_index``,
``same_class``, ...). Returning ``None`` removes that sub-step (no residual, no norm).

Register your own layer from your own code::

    from gcahng.graph import NODE_TO_NODE

    @NODE_TO_NODE.register("my_attention")
    class MyAttention(torch.nn.Module): ...

    GCL(512, 100, node_to_node="my_attention")
"""
from __future__ import annotations

from torch import nn

from gcahng.registry import Registry

NODE_TO_NODE: Registry[type[nn.Module]] = Registry("node-to-node layer")
EDGE_TO_NODE: Registry[type[nn.Module]] = Registry("edge-to-node layer")
NODE_TO_EDGE: Registry[type[nn.Module]] = Registry("node-to-edge layer")


class Skip(nn.Module):
    """The ``none`` layer of every role: contributes nothing, so its sub-step is skipped."""

    def __init__(self, dim: int, *, heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()

    def forward(self, *args, **kwargs) -> None:
        return None


for _registry in (NODE_TO_NODE, EDGE_TO_NODE, NODE_TO_EDGE):
    _registry.register("none")(Skip)
