"""The gather-fused edge operations equal the plain gather expressions, values and gradients."""
import torch

from gcahng.graph.ops import gather_dot, gather_scale


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(6, 3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    ix = torch.randint(0, 5, (17,), generator=g)
    iy = torch.randint(0, 6, (17,), generator=g)
    return x, y, ix, iy


def test_gather_dot_matches_plain_expression_and_gradcheck():
    x, y, ix, iy = _inputs()
    torch.testing.assert_close(gather_dot(x, y, ix, iy), (x[ix] * y[iy]).sum(-1))
    assert torch.autograd.gradcheck(lambda a, b: gather_dot(a, b, ix, iy), (x, y))
    edge = torch.randn(17, 3, 4, dtype=torch.float64, requires_grad=True)  # edge-level operand
    torch.testing.assert_close(gather_dot(edge, y, None, iy), (edge * y[iy]).sum(-1))
    assert torch.autograd.gradcheck(lambda a, b: gather_dot(a, b, None, iy), (edge, y))


def test_gather_scale_matches_plain_expression_and_gradcheck():
    _, y, _, iy = _inputs(1)
    w = torch.rand(17, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(gather_scale(w, y, iy), w.unsqueeze(-1) * y[iy])
    assert torch.autograd.gradcheck(lambda a, b: gather_scale(a, b, iy), (w, y))


def test_backward_keeps_no_edge_sized_copies():
    x, y, ix, iy = _inputs()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        gather_dot(x, y, ix, iy).sum()
        gather_scale(torch.rand(17, 3, dtype=torch.float64, requires_grad=True), y, iy).sum()
    # node tensors (5|6, 3, 4), indices (17,) and the (17, 3) weights; never a gathered (17, 3, 4) copy
    assert (17, 3, 4) not in saved and saved, saved
