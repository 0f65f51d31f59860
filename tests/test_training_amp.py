"""bfloat16 autocast (``--amp``) on the CPU: the embedding network and the GCL run in bfloat16,
while lambda, the node logits, CACAI and the losses stay float32 and close to a float32 step."""
import torch
from core_helpers import chunk_major_labels
from torch import nn

from gcahng.generator import HardNegativeGenerator
from gcahng.graph import GCL, build_batch_graph
from gcahng.hyperparameters import GCLConfig, GeneratorConfig
from gcahng.training import TrainingStep, build_optimizers

C, M, D, IN = 4, 3, 16, 12


def test_gcl_under_bfloat16_autocast_returns_float32_close_to_float32_and_backpropagates():
    torch.manual_seed(0)
    gcl = GCL(D, 6, GCLConfig(iterations=2, heads=2)).eval()
    z = torch.randn(C * M, D, requires_grad=True)
    y = chunk_major_labels(C, M, [5, 0, 3, 1])
    lam32, logits32 = gcl(build_batch_graph(z, y, C, M))
    grad32 = torch.autograd.grad(lam32.sum() + logits32.sum(), z)[0]
    readout = []
    gcl.edge_readout.register_forward_hook(lambda module, inputs, output: readout.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lam, logits = gcl(build_batch_graph(z, y, C, M))
    assert readout == [torch.bfloat16]  # the projections ran in bfloat16
    assert lam.dtype == logits.dtype == torch.float32
    torch.testing.assert_close(lam, lam32, rtol=0, atol=3e-2)
    torch.testing.assert_close(logits, logits32, rtol=5e-2, atol=5e-2)
    grad = torch.autograd.grad(lam.sum() + logits.sum(), z)[0]
    assert grad.dtype == torch.float32
    assert float((grad - grad32).norm() / grad32.norm()) < 0.1


def _step(autocast_dtype):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(IN, 32), nn.Tanh(), nn.Linear(32, D))
    gen = HardNegativeGenerator(D, 6, GeneratorConfig(GCLConfig(iterations=1, heads=2))).eval()
    step = TrainingStep(net, gen, build_optimizers(net, gen, base_lr=1e-3, gnn_lr=1e-3), autocast_dtype=autocast_dtype)
    step.running.j_m, step.running.j_gen = 2.0, 3.0  # synthetic term on
    dtypes = []
    gen.gcl.edge_readout.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    x = torch.randn(C * M, IN) * 3
    y = chunk_major_labels(C, M, [5, 0, 3, 1])
    return [step(x + i, y, C, M) for i in range(3)], set(dtypes)


def test_training_step_with_bfloat16_autocast_on_the_cpu_matches_float32_loosely():
    (full, full_dtypes), (amp, amp_dtypes) = _step(None), _step(torch.bfloat16)
    assert full_dtypes == {torch.float32} and amp_dtypes == {torch.bfloat16}  # both GCL passes in bfloat16
    for f, a in zip(full, amp, strict=True):
        assert f.keys() == a.keys()
        for name in f:
            assert abs(a[name] - f[name]) <= 0.05 * abs(f[name]) + 0.02, (name, a[name], f[name])
