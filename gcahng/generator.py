"""The hard-negative generator: GCL, CACAI and the label-preserving classifier ``W_s``."""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gcahng.cacai import CandidateGeometry, SyntheticNegatives, cacai
from gcahng.errors import CheckpointError
from gcahng.graph import GCL, build_batch_graph
from gcahng.hyperparameters import GeneratorConfig

# (pattern on a reference key without "module.", replacement giving our key)
_REFERENCE_KEYS: list[tuple[str, str]] = [
    (r"gnn\.dim_red\.", "gcl.reduce."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.att\.q_linear\.", r"gcl.layers.\1.node_update.node_to_node.lin_q."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.att\.k_linear\.", r"gcl.layers.\1.node_update.node_to_node.lin_k."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.att\.v_linear\.", r"gcl.layers.\1.node_update.node_to_node.lin_v."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.att\.out\.", r"gcl.layers.\1.node_update.node_to_node.lin_out."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.edge_to_node\.", r"gcl.layers.\1.node_update.edge_to_node.lin."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.linear1\.", r"gcl.layers.\1.node_update.ffn.0."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.linear2\.", r"gcl.layers.\1.node_update.ffn.2."),
    (r"gnn\.gnn\.(\d+)\.node_model\.layers\.0\.norm\.1\.", r"gcl.layers.\1.node_update.norm.norm."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.att\.q_linear\.", r"gcl.layers.\1.edge_update.node_to_edge.lin_q."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.att\.k_linear\.", r"gcl.layers.\1.edge_update.node_to_edge.lin_k."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.att\.v_linear\.", r"gcl.layers.\1.edge_update.node_to_edge.lin_v."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.node_to_edge\.", r"gcl.layers.\1.edge_update.node_to_edge.lin_node."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.linear\.0\.", r"gcl.layers.\1.edge_update.ffn.0."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.linear\.2\.", r"gcl.layers.\1.edge_update.ffn.1.norm."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.linear\.3\.", r"gcl.layers.\1.edge_update.ffn.2."),
    (r"gnn\.gnn\.(\d+)\.edge_model\.norm\.1\.", r"gcl.layers.\1.edge_update.norm.norm."),
    (r"gnn\.bottleneck1\.0\.", "gcl.edge_bn."),
    (r"gnn\.bottleneck2\.0\.", "gcl.node_bn."),
    (r"gnn\.fc\.0\.", "gcl.edge_readout."),
    (r"gnn\.cls\.0\.", "gcl.node_classifier."),
    (r"softmax_classifier\.", "classifier."),
]
_IGNORED = re.compile(r"gnn\.gnn\.\d+\.node_model\.layers\.0\.update_node\.")  # unused in the reference


def reference_key_to_local(key: str) -> str | None:
    """Our parameter name for a key of the authors' release, or ``None`` if it is not a generator key."""
    key = key.removeprefix("module.")
    for pattern, replacement in _REFERENCE_KEYS:
        local, count = re.subn("^" + pattern, replacement, key)
        if count:
            return local
    return None


class HardNegativeGenerator(nn.Module):
    """GCL (method.md §3) + CACAI (§4) + the classifier ``W_s`` (§5) that keeps negatives' labels.

    Args:
        dim: embedding size ``D``. num_classes: number of training classes.
        config: the GCL hyper-parameters and CACAI's random weighting (the defaults are the
            reference's).
    """

    def __init__(self, dim: int, num_classes: int, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        self.gcl = GCL(dim, num_classes, config.gcl)
        self.classifier = nn.Linear(dim, num_classes)  # W_s
        self.random_weighting = config.random_weighting

    def reset_parameters(self) -> None:
        """Re-draw GCL's and ``W_s``'s parameters as a freshly built generator would."""
        self.gcl.reset_parameters()
        self.classifier.reset_parameters()

    def extra_repr(self) -> str:
        return f"random_weighting={self.random_weighting!r}"

    def correlate(
        self, z: Tensor, labels: Tensor, classes_per_batch: int, per_class: int, *, graph: Data | None = None,
        lambda_grad: bool = True,
    ) -> tuple[Data, Tensor, Tensor]:
        """Batch graph of ``z`` and GCL's output: ``(graph, lam (E, D), node_logits (B, K))``.
        ``graph``: the batch graph of ``z`` when already built (it does not depend on the GCL);
        ``lambda_grad=False``: ``lam`` is not differentiable (see :class:`~gcahng.graph.GCL`)."""
        if graph is None:
            graph = build_batch_graph(z, labels, classes_per_batch, per_class)
        lam, node_logits = self.gcl(graph, lambda_grad=lambda_grad)
        return graph, lam, node_logits

    def interpolate(
        self,
        z: Tensor,
        lam: Tensor | None,
        gamma: float,
        labels: Tensor,
        classes_per_batch: int,
        per_class: int,
        generator: torch.Generator | None = None,
        graph: Data | None = None,
        anchor_slots: slice | None = None,
        geometry: CandidateGeometry | None = None,
    ) -> SyntheticNegatives:
        """CACAI with this generator's random-weighting mode; ``graph``: the one ``lam`` was computed
        on; ``anchor_slots``: one rank's anchors only (see :func:`~gcahng.cacai.cacai`); ``geometry``:
        ``CandidateGeometry.of(z, C, m, anchor_slots)`` when already computed."""
        return cacai(
            z, lam, gamma, labels, classes_per_batch, per_class,
            graph=graph, random_weighting=self.random_weighting, generator=generator, anchor_slots=anchor_slots,
            geometry=geometry,
        )

    def load_reference_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load the ``gnn.*`` and ``softmax_classifier.*`` entries of the authors' checkpoints.

        Accepts a full-model state dict (other prefixes such as ``feature_extractor.`` are left
        for the embedding network) with or without a ``module.`` prefix. The unused
        ``update_node`` entries are ignored. Needs the reference layers (the defaults).
        Raises :class:`CheckpointError` naming the key on a missing or unknown generator key
        or a shape mismatch.
        """
        own = self.state_dict()
        mapped: dict[str, Tensor] = {}
        for key, value in state_dict.items():
            bare = key.removeprefix("module.")
            if not (bare.startswith("gnn.") or bare.startswith("softmax_classifier.")) or _IGNORED.match(bare):
                continue
            local = reference_key_to_local(bare)
            if local is None or local not in own:
                raise CheckpointError(f"unexpected generator key {key!r} in the reference checkpoint")
            if tuple(value.shape) != tuple(own[local].shape):
                raise CheckpointError(
                    f"shape mismatch for {key!r}: checkpoint {tuple(value.shape)}, "
                    f"model {tuple(own[local].shape)} (check dim, classes, iterations)"
                )
            mapped[local] = value
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise CheckpointError(
                f"the reference checkpoint lacks {len(missing)} generator entries, first: {missing[0]!r} "
                "(are the GCL iterations and layers the reference ones?)"
            )
        self.load_state_dict(mapped)
