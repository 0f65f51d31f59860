"""The batch graph and GCL, the graph network that learns correlations (method.md §2–3)."""
from gcahng.graph.batch_graph import (
    COMPLETE_ROW_MAJOR,
    GraphLayout,
    build_batch_graph,
    channel_correlations,
    check_chunk_major,
    check_row_major,
)
from gcahng.graph.edge_to_node import MeanEdgeToNode, SumEdgeToNode
from gcahng.graph.gcl import GCL, EdgeUpdate, GCLIteration, NodeUpdate
from gcahng.graph.node_to_edge import EdgeAttention, MLPNodeToEdge
from gcahng.graph.node_to_node import GATNodeToNode, MeanNodeToNode, NodeAttention
from gcahng.graph.pairs import UnorderedPairs, pair_batch_norm, pair_graph
from gcahng.graph.registries import (
    EDGE_TO_NODE,
    NODE_TO_EDGE,
    NODE_TO_NODE,
    EdgeToNodeLayer,
    GCLLayer,
    NodeToEdgeLayer,
    NodeToNodeLayer,
    Skip,
)

__all__ = [
    "build_batch_graph", "channel_correlations", "check_chunk_major", "check_row_major", "GraphLayout",
    "COMPLETE_ROW_MAJOR", "UnorderedPairs", "pair_graph", "pair_batch_norm",
    "GCL", "GCLIteration", "NodeUpdate", "EdgeUpdate",
    "NODE_TO_NODE", "EDGE_TO_NODE", "NODE_TO_EDGE", "Skip",
    "GCLLayer", "NodeToNodeLayer", "EdgeToNodeLayer", "NodeToEdgeLayer",
    "NodeAttention", "GATNodeToNode", "MeanNodeToNode",
    "SumEdgeToNode", "MeanEdgeToNode",
    "EdgeAttention", "MLPNodeToEdge",
]
