"""Input handling of the evaluation: accepted types, and clear errors for bad values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gcahng.errors import InputError
from gcahng.evaluation import evaluate_leave_one_out, evaluate_query_gallery


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 5)
    return rng.standard_normal((100, 8)), labels


def test_torch_and_numpy_inputs_of_any_float_dtype_agree(data):
    x, y = data
    expected = evaluate_leave_one_out(x.astype(np.float32), y)
    assert evaluate_leave_one_out(torch.from_numpy(x).float(), torch.from_numpy(y)) == expected
    assert evaluate_leave_one_out(x, y.astype(np.int32)) == expected  # float64 in
    # bfloat16 rounds the embeddings, so only check it runs and gives fractions
    low = evaluate_leave_one_out(torch.from_numpy(x).bfloat16(), torch.from_numpy(y))
    assert 0.0 <= low.recall[1] <= 1.0


def test_scale_of_embeddings_does_not_matter(data):
    x, y = data
    assert evaluate_leave_one_out(x * 1e-3, y) == evaluate_leave_one_out(x * 7.0, y)


@pytest.mark.parametrize("bad_value, row", [(np.nan, 3), (np.inf, 7), (-np.inf, 0)])
def test_non_finite_embeddings_name_the_row(data, bad_value, row):
    x, y = data
    x = x.copy()
    x[row, 2] = bad_value
    with pytest.raises(InputError, match=rf"non-finite.*row {row}\b"):
        evaluate_leave_one_out(x, y)


def test_zero_vector_names_the_row(data):
    x, y = data
    x = x.copy()
    x[42] = 0.0
    with pytest.raises(InputError, match=r"row 42 is the zero vector"):
        evaluate_leave_one_out(x, y)


def test_mismatched_lengths_are_reported(data):
    x, y = data
    with pytest.raises(InputError, match=r"labels has 99 entries but embeddings has 100 rows"):
        evaluate_leave_one_out(x, y[:-1])
    with pytest.raises(InputError, match=r"gallery_labels has 3 entries"):
        evaluate_query_gallery(x, y, x, y[:3])


def test_mismatched_dimensions_are_reported(data):
    x, y = data
    with pytest.raises(InputError, match=r"dimension 8 but gallery_embeddings have 4"):
        evaluate_query_gallery(x, y, x[:, :4], y)


@pytest.mark.parametrize(
    "embeddings, labels, message",
    [
        (np.zeros(5), np.zeros(5, dtype=int), r"shape \(N, D\)"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), r"shape \(N, D\)"),
        (np.ones((5, 3), dtype=int), np.zeros(5, dtype=int), r"floating point"),
        (np.ones((5, 3)), np.zeros(5), r"labels must be integers"),
        (np.ones((5, 3)), np.zeros((5, 1), dtype=int), r"labels must be 1-D"),
    ],
)
def test_bad_shapes_and_dtypes_are_reported(embeddings, labels, message):
    with pytest.raises(InputError, match=message):
        evaluate_leave_one_out(embeddings, labels)


@pytest.mark.parametrize("ks", [(0, 1), (1, -4), (1.5,), ("a",)])
def test_bad_ks_are_reported(data, ks):
    x, y = data
    with pytest.raises(InputError, match="ks must be"):
        evaluate_leave_one_out(x, y, ks)


@pytest.mark.parametrize("chunk_size", [0, -1, 2.5])
def test_bad_chunk_size_is_reported(data, chunk_size):
    x, y = data
    with pytest.raises(InputError, match="chunk_size"):
        evaluate_leave_one_out(x, y, chunk_size=chunk_size)


def test_labels_without_any_pair_are_reported(data):
    x, _ = data
    with pytest.raises(InputError, match="no query has another item with its label"):
        evaluate_leave_one_out(x, np.arange(len(x)))


def test_recall_at_1_is_always_computed(data):
    x, y = data
    metrics = evaluate_leave_one_out(x, y, ks=(4, 2))
    assert sorted(metrics.recall) == [1, 2, 4]
    assert metrics.primary == metrics.recall[1]
