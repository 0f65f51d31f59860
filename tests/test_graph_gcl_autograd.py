"""What GCL keeps for autograd: ``lambda_grad=False`` and the recomputed edge GELU-LayerNorm
blocks change the work done, never the values or the gradients."""
import pytest
import torch
import torch.nn.functional as F
from core_helpers import random_batch

from gcahng.graph import GCL, build_batch_graph
from gcahng.graph import gcl as gcl_module
from gcahng.hyperparameters import GCLConfig

C, M, D = 3, 3, 8


def _run(gcl: GCL, z: torch.Tensor, y: torch.Tensor, seed: int, **kwargs):
    """lam, logits and the gradients of a node-logit loss (the first pass's J_gce)."""
    gcl.zero_grad(set_to_none=True)
    zz = z.clone().requires_grad_(True)
    torch.manual_seed(seed)  # the same dropout draws for both calls
    lam, logits = gcl(build_batch_graph(zz, y, C, M), **kwargs)
    F.cross_entropy(logits, y).backward()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in gcl.named_parameters()}
    return lam, logits.detach(), zz.grad, grads


@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("edge_dropout", ["paired", "independent"])
def test_lambda_without_grad_has_the_same_values_and_node_gradients(iterations, edge_dropout):
    torch.manual_seed(0)
    gcl = GCL(D, 5, GCLConfig(iterations=iterations, heads=2, dropout=0.3, edge_dropout=edge_dropout)).double()
    gcl.train()
    z, y = random_batch(C, M, D, dtype=torch.float64)
    lam, logits, z_grad, grads = _run(gcl, z, y, seed=7)
    lam_nograd, logits_nograd, z_grad_nograd, grads_nograd = _run(gcl, z, y, seed=7, lambda_grad=False)

    assert lam.requires_grad and not lam_nograd.requires_grad
    torch.testing.assert_close(lam_nograd, lam.detach(), rtol=0, atol=0)
    torch.testing.assert_close(logits_nograd, logits, rtol=0, atol=0)
    torch.testing.assert_close(z_grad_nograd, z_grad, rtol=0, atol=0)
    assert grads.keys() == grads_nograd.keys()
    last_edge_update = f"layers.{iterations - 1}.edge_update."
    for name, grad in grads.items():
        if name.startswith(last_edge_update) or name.startswith("edge_readout"):
            assert grad is None and grads_nograd[name] is None, name  # no loss reaches them
        elif grad is None:
            assert grads_nograd[name] is None, name
        else:
            torch.testing.assert_close(grads_nograd[name], grad, rtol=0, atol=0, msg=name)


def test_lambda_without_grad_updates_the_batch_norm_statistics_as_with_it():
    torch.manual_seed(0)
    gcl = GCL(D, 5, GCLConfig(iterations=1, heads=2, dropout=0.0))
    z, y = random_batch(C, M, D, dtype=torch.float32)
    gcl(build_batch_graph(z, y, C, M))
    expected = gcl.edge_bn.running_var.clone()
    gcl.edge_bn.reset_running_stats()
    gcl(build_batch_graph(z, y, C, M), lambda_grad=False)
    torch.testing.assert_close(gcl.edge_bn.running_var, expected)


def test_edge_blocks_recompute_only_above_the_size_threshold_with_the_same_gradients(monkeypatch):
    torch.manual_seed(0)
    gcl = GCL(D, 5, GCLConfig(iterations=2, heads=2, dropout=0.0)).double()
    z, y = random_batch(C, M, D, dtype=torch.float64)
    calls = []
    real_checkpoint = gcl_module.checkpoint

    def counting_checkpoint(*args, **kwargs):
        calls.append(args[1].shape)
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(gcl_module, "checkpoint", counting_checkpoint)
    results = []
    for threshold in (gcl_module.RECOMPUTE_MIN_BYTES, 0):
        monkeypatch.setattr(gcl_module, "RECOMPUTE_MIN_BYTES", threshold)
        calls.clear()
        gcl.zero_grad(set_to_none=True)
        lam, logits = gcl(build_batch_graph(z, y, C, M))
        (lam.pow(2).mean() + F.cross_entropy(logits, y)).backward()
        grads = [p.grad.clone() for p in gcl.parameters() if p.grad is not None]
        results.append((list(calls), lam.detach(), grads))
    (small_calls, lam_kept, grads_kept), (all_calls, lam_recomputed, grads_recomputed) = results
    assert small_calls == []  # a 45 x 8 edge tensor is far below the threshold: outputs kept
    assert len(all_calls) == 2 * 3  # per iteration: the FFN's 4D block and the edge norm twice
    torch.testing.assert_close(lam_recomputed, lam_kept, rtol=0, atol=0)
    for ours, reference in zip(grads_recomputed, grads_kept, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-14)
