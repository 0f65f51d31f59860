"""Retrieval metrics against a slow, obviously correct reference and against pytorch-metric-learning."""
from __future__ import annotations

import numpy as np
import pytest
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

from gcahng.evaluation import evaluate_leave_one_out, evaluate_query_gallery


def reference_metrics(queries, query_labels, gallery, gallery_labels, ks, leave_one_out):
    """Recall@K, MAP@R, R-Precision by a per-query loop over a fully sorted gallery.

    Cosine similarity in float64; equal scores ranked by ascending gallery index. Query/gallery
    Recall@K is over the queries that have a same-label gallery item (the others cannot be found).
    """
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = q.astype(np.float32).astype(np.float64)
    g = g.astype(np.float32).astype(np.float64)
    hits = dict.fromkeys(ks, 0)
    ap_values, rp_values = [], []
    for i in range(len(q)):
        scores = g @ q[i]
        candidates = [j for j in range(len(g)) if not (leave_one_out and j == i)]
        ranked = sorted(candidates, key=lambda j: (-scores[j], j))
        relevant = [gallery_labels[j] == query_labels[i] for j in ranked]
        for k in ks:
            hits[k] += any(relevant[:k])
        r = sum(relevant)
        if r == 0:
            continue
        found, precision_sum = 0, 0.0
        for rank in range(1, r + 1):
            if relevant[rank - 1]:
                found += 1
                precision_sum += found / rank
        ap_values.append(precision_sum / r)
        rp_values.append(found / r)
    return {
        "recall": {k: hits[k] / (len(q) if leave_one_out else len(ap_values)) for k in ks},
        "map_at_r": float(np.mean(ap_values)),
        "r_precision": float(np.mean(rp_values)),
        "without_relevant": len(q) - len(ap_values),
    }


def assert_matches_reference(metrics, reference, tol=0.0):
    assert metrics.recall == pytest.approx(reference["recall"], abs=tol)
    assert metrics.map_at_r == pytest.approx(reference["map_at_r"], abs=max(tol, 1e-12))
    assert metrics.r_precision == pytest.approx(reference["r_precision"], abs=max(tol, 1e-12))
    assert metrics.num_queries_without_relevant == reference["without_relevant"]


def class_labels(rng, num_classes, low, high):
    """Labels of classes with between ``low`` and ``high`` items each, shuffled."""
    labels = np.repeat(np.arange(num_classes), rng.integers(low, high + 1, num_classes))
    return rng.permutation(labels)


@pytest.fixture(scope="module")
def random_loo():
    rng = np.random.default_rng(0)
    labels = class_labels(rng, 60, 2, 12)
    # a little class structure so that the metrics are far from zero
    centres = rng.standard_normal((60, 16))
    x = centres[labels] + 1.5 * rng.standard_normal((len(labels), 16))
    return x.astype(np.float32), labels


@pytest.fixture(scope="module")
def random_query_gallery():
    rng = np.random.default_rng(1)
    gallery_labels = class_labels(rng, 50, 1, 9)
    query_labels = rng.integers(0, 50, 300)
    centres = rng.standard_normal((50, 16))
    g = centres[gallery_labels] + 1.5 * rng.standard_normal((len(gallery_labels), 16))
    q = centres[query_labels] + 1.5 * rng.standard_normal((len(query_labels), 16))
    return q.astype(np.float32), query_labels, g.astype(np.float32), gallery_labels


def test_leave_one_out_equals_reference_for_every_k(random_loo):
    x, y = random_loo
    ks = (1, 2, 4, 8, 16, 100, 1000)
    metrics = evaluate_leave_one_out(x, y, ks, chunk_size=37)
    assert_matches_reference(metrics, reference_metrics(x, y, x, y, ks, True))
    assert 0.05 < metrics.recall[1] < metrics.recall[8] < 1.0


def test_query_gallery_equals_reference_for_every_k(random_query_gallery):
    q, qy, g, gy = random_query_gallery
    ks = (1, 10, 20, 30, 40, 50)
    metrics = evaluate_query_gallery(q, qy, g, gy, ks, chunk_size=64)
    assert_matches_reference(metrics, reference_metrics(q, qy, g, gy, ks, False))


def test_leave_one_out_matches_accuracy_calculator(random_loo):
    x, y = random_loo
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    ours = evaluate_leave_one_out(x, y)
    theirs = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r", "r_precision"), k="max_bin_count"
    ).get_accuracy(x, y)
    assert ours.recall[1] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours.map_at_r == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)
    assert ours.r_precision == pytest.approx(theirs["r_precision"], abs=1e-6)


def test_query_gallery_matches_accuracy_calculator(random_query_gallery):
    q, qy, g, gy = random_query_gallery
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    present = np.isin(qy, gy)  # AccuracyCalculator leaves queries without a relevant item out of P@1
    ours = evaluate_query_gallery(q[present], qy[present], g, gy)
    theirs = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r", "r_precision"), k="max_bin_count"
    ).get_accuracy(q[present], qy[present], g, gy, ref_includes_query=False)
    assert ours.recall[1] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours.map_at_r == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)
    assert ours.r_precision == pytest.approx(theirs["r_precision"], abs=1e-6)


def lattice_embeddings(rng, num_items, num_distinct, dim=16):
    """Unit vectors with entries +-1/4: every inner product is an exact multiple of 1/16.

    Drawn from ``num_distinct`` patterns, so there are exact duplicates and many equal scores.
    """
    patterns = rng.choice([-1.0, 1.0], size=(num_distinct, dim)) / 4.0
    return patterns[rng.integers(0, num_distinct, num_items)].astype(np.float32)


@pytest.mark.parametrize("num_distinct", [3, 40])
def test_ties_are_broken_by_index_leave_one_out(num_distinct):
    rng = np.random.default_rng(num_distinct)
    x = lattice_embeddings(rng, 300, num_distinct)
    y = rng.integers(0, 30, 300)
    ks = (1, 2, 4, 8, 50)
    reference = reference_metrics(x, y, x, y, ks, True)
    for chunk_size in (None, 1, 29):
        assert_matches_reference(evaluate_leave_one_out(x, y, ks, chunk_size=chunk_size), reference)


def test_ties_are_broken_by_index_query_gallery():
    rng = np.random.default_rng(7)
    g = lattice_embeddings(rng, 250, 25)
    q = lattice_embeddings(rng, 120, 25)
    gy, qy = rng.integers(0, 20, 250), rng.integers(0, 22, 120)
    ks = (1, 10, 20, 30, 40, 50)
    reference = reference_metrics(q, qy, g, gy, ks, False)
    for chunk_size in (None, 1, 17):
        assert_matches_reference(evaluate_query_gallery(q, qy, g, gy, ks, chunk_size=chunk_size), reference)


def test_query_is_removed_by_index_not_by_position():
    # items 0, 1, 2 are identical; ranking among them is by index, and each query skips only itself
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    y = np.array([5, 6, 6, 5])
    metrics = evaluate_leave_one_out(x, y, ks=(1, 2, 3))
    # nearest lists: 0 -> [1, 2, 3]; 1 -> [0, 2, 3]; 2 -> [0, 1, 3]; 3 -> [0, 1, 2]
    assert metrics.recall == {1: 0.25, 2: 0.75, 3: 1.0}
    # R: 1, 1, 1, 1. AP@R: 0, 0, 0, 1 (item 0 is first for query 3)
    assert metrics.map_at_r == 0.25
    assert metrics.r_precision == 0.25


def test_queries_without_relevant_items_are_counted_and_left_out(random_loo):
    x, y = random_loo
    y = y.copy()
    y[:5] = 1000 + np.arange(5)  # five singletons
    metrics = evaluate_leave_one_out(x, y, (1, 4))
    reference = reference_metrics(x, y, x, y, (1, 4), True)
    assert reference["without_relevant"] >= 5
    assert_matches_reference(metrics, reference)
    assert metrics.num_queries == len(x)


def test_recall_at_k_beyond_gallery_size_counts_any_relevant_item(random_query_gallery):
    q, qy, g, gy = random_query_gallery
    metrics = evaluate_query_gallery(q, qy, g, gy, ks=(1, len(g), 10 * len(g)))
    assert metrics.recall[len(g)] == metrics.recall[10 * len(g)] == pytest.approx(np.isin(qy, gy).mean())
