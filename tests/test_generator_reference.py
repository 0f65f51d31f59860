"""Loading the generator part of the authors' released checkpoints."""
import pytest
import torch
from release_keys import release_state_dict

from gcahng.errors import CheckpointError
from gcahng.generator import HardNegativeGenerator
from gcahng.hyperparameters import GCLConfig, GeneratorConfig


@pytest.mark.parametrize(
    "name, iterations, heads", [("resnet50_K2.tsv", 2, 4), ("resnet50_K1.tsv", 1, 2), ("googlenet_K2.tsv", 2, 4)]
)
@pytest.mark.parametrize("prefix", ["", "module."])
def test_round_trip_of_listed_names_and_shapes(name, iterations, heads, prefix):
    sd = {prefix + k: v for k, v in release_state_dict(name).items()}
    gen = HardNegativeGenerator(512, 100, GeneratorConfig(GCLConfig(iterations=iterations, heads=heads)))
    gen.load_reference_state_dict(sd)
    own = gen.state_dict()
    assert torch.equal(own["gcl.reduce.weight"], sd[prefix + "gnn.dim_red.weight"])
    assert torch.equal(own["classifier.bias"], sd[prefix + "softmax_classifier.bias"])
    assert torch.equal(own["gcl.edge_bn.running_var"], sd[prefix + "gnn.bottleneck1.0.running_var"])
    last = iterations - 1
    assert torch.equal(
        own[f"gcl.layers.{last}.edge_update.ffn.1.norm.weight"],
        sd[f"{prefix}gnn.gnn.{last}.edge_model.linear.2.weight"],
    )
    assert torch.equal(
        own[f"gcl.layers.{last}.node_update.node_to_node.lin_out.bias"],
        sd[f"{prefix}gnn.gnn.{last}.node_model.layers.0.att.out.bias"],
    )
    # every generator entry of the release was used (update_node is the only one ignored)
    used = {k for k in sd if k.removeprefix(prefix).startswith(("gnn.", "softmax_classifier."))}
    ignored = {k for k in used if ".update_node." in k}
    assert len(used) - len(ignored) == len(own)


def test_missing_key_is_named():
    sd = release_state_dict("resnet50_K2.tsv")
    del sd["gnn.gnn.1.edge_model.att.k_linear.bias"]
    with pytest.raises(CheckpointError, match=r"gcl\.layers\.1\.edge_update\.node_to_edge\.lin_k\.bias"):
        HardNegativeGenerator(512, 100).load_reference_state_dict(sd)


def test_unexpected_key_is_named():
    sd = release_state_dict("resnet50_K2.tsv")
    sd["gnn.gnn.0.node_model.layers.0.att.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"gnn\.gnn\.0\.node_model\.layers\.0\.att\.extra\.weight"):
        HardNegativeGenerator(512, 100).load_reference_state_dict(sd)


def test_extra_iteration_in_checkpoint_is_unexpected():
    sd = release_state_dict("resnet50_K2.tsv")
    with pytest.raises(CheckpointError, match=r"gnn\.gnn\.1\."):
        HardNegativeGenerator(512, 100, GeneratorConfig(GCLConfig(iterations=1))).load_reference_state_dict(sd)


def test_shape_mismatch_is_named():
    sd = release_state_dict("resnet50_K2.tsv")
    with pytest.raises(
        CheckpointError, match=r"shape mismatch for 'softmax_classifier\.weight'.*\(100, 512\).*\(98, 512\)"
    ):
        HardNegativeGenerator(512, 98).load_reference_state_dict(sd)
