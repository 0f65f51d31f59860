import numpy as np
import pytest
import torch
from core_helpers import chunk_major_labels, random_batch

from gcahng.graph import build_batch_graph


def test_edges_are_row_major_complete_with_self_loops():
    z, y = random_batch(3, 2, 5)
    g = build_batch_graph(z, y, 3, 2)
    B = 6
    assert g.edge_index.shape == (2, B * B)
    for e in range(B * B):
        assert g.edge_index[0, e] == e // B and g.edge_index[1, e] == e % B
    assert g.x is z and torch.equal(g.y, y)
    assert g.classes_per_batch == 3 and g.per_class == 2


def test_edge_features_match_per_edge_loop_and_pearson():
    z, y = random_batch(4, 3, 7)
    g = build_batch_graph(z, y, 4, 3)
    B = z.shape[0]
    for i in range(B):
        for j in range(B):
            u_i = z[i] - z[i].mean()
            u_j = z[j] - z[j].mean()
            expected = u_i * u_j / (u_i.norm() * u_j.norm())
            got = g.edge_attr[i * B + j]
            torch.testing.assert_close(got, expected)
            assert got.sum().item() == pytest.approx(np.corrcoef(z[i].numpy(), z[j].numpy())[0, 1], abs=1e-12)
    w = g.edge_attr.view(B, B, -1)
    torch.testing.assert_close(w, w.transpose(0, 1))


def test_same_class_mask_includes_self_loops():
    z, y = random_batch(3, 3, 4)
    g = build_batch_graph(z, y, 3, 3)
    B = 9
    for e in range(B * B):
        i, j = divmod(e, B)
        assert bool(g.same_class[e]) == (y[i] == y[j]).item()
    assert g.same_class.view(B, B).diagonal().all()


def test_constant_embedding_gives_zero_correlation_not_nan():
    z, y = random_batch(2, 2, 4)
    z[0] = 3.0
    g = build_batch_graph(z, y, 2, 2)
    assert torch.isfinite(g.edge_attr).all()
    assert (g.edge_attr.view(4, 4, -1)[0] == 0).all()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: (torch.randn(6), chunk_major_labels(3, 2), 3, 2), "2-D"),
        (lambda: (torch.randn(6, 4), chunk_major_labels(3, 2), 2, 2), r"batch size 6 != .* 2 \* 2"),
        (lambda: (torch.full((6, 4), float("nan")), chunk_major_labels(3, 2), 3, 2), "NaN or infinite"),
        (lambda: (torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2]), 3, 2), "repeats a class"),
        (lambda: (torch.randn(6, 4), torch.tensor([0, 1, 2, 1, 0, 2]), 3, 2), "not chunk-major"),
        (lambda: (torch.randn(6, 4), torch.tensor([0, 1, 2]), 3, 2), r"labels must have shape \(6,\)"),
        (lambda: (torch.ones(6, 4, dtype=torch.long), chunk_major_labels(3, 2), 3, 2), "floating point"),
    ],
)
def test_bad_input_raises_value_error(make, message):
    z, y, C, m = make()
    with pytest.raises(ValueError, match=message):
        build_batch_graph(z, y, C, m)
