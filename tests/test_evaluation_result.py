"""The result object (dict/JSON round trip, the printed table), the protocols and NMI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gcahng.errors import InputError
from gcahng.evaluation import PROTOCOLS, RetrievalMetrics, evaluate_leave_one_out, evaluate_query_gallery
from gcahng.evaluation.clustering import clustering_nmi

METRICS = RetrievalMetrics(
    recall={1: 0.6523, 10: 0.84, 100: 0.9312, 1000: 0.98751},
    map_at_r=0.2449,
    r_precision=0.35551,
    nmi=None,
    num_queries=60502,
    num_queries_without_relevant=0,
)


def test_dict_keys_are_flat_and_stable():
    assert list(METRICS.to_dict()) == [
        "recall@1", "recall@10", "recall@100", "recall@1000",
        "map@r", "r_precision", "nmi", "num_queries", "num_queries_without_relevant",
        "num_queries_left_out_of_recall",
    ]  # fmt: skip


def test_dict_and_json_round_trip():
    assert RetrievalMetrics.from_dict(METRICS.to_dict()) == METRICS
    assert RetrievalMetrics.from_json(METRICS.to_json()) == METRICS
    with_nmi = RetrievalMetrics(**{**METRICS.__dict__, "nmi": 0.5, "num_queries_without_relevant": 3})
    assert RetrievalMetrics.from_json(with_nmi.to_json()) == with_nmi
    assert json.loads(with_nmi.to_json())["nmi"] == 0.5


def test_from_dict_reads_files_written_before_the_left_out_count():
    data = METRICS.to_dict()
    del data["num_queries_left_out_of_recall"]
    assert RetrievalMetrics.from_dict(data) == METRICS


def test_queries_whose_label_has_no_gallery_item_are_left_out_of_recall():
    # labels 0 and 1 are in the gallery; the two queries of label 2 (an In-Shop item without
    # gallery images) cannot be found and must not count as misses
    gallery = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    gallery_labels = np.array([0, 0, 1, 1])
    queries = np.eye(4, dtype=np.float32)[[0, 3, 1, 2]]
    query_labels = np.array([0, 1, 2, 2])
    metrics = evaluate_query_gallery(queries, query_labels, gallery, gallery_labels, (1, 2))
    assert metrics.recall == {1: 1.0, 2: 1.0}
    assert metrics.num_queries == 4 and metrics.num_queries_left_out_of_recall == 2
    assert metrics.num_queries_without_relevant == 2
    assert "(4 queries; 2 without a same-label item in the gallery, left out of Recall@K, MAP@R and RP)" in str(metrics)
    # leave-one-out keeps counting a class of one as a miss, as before
    loo = evaluate_leave_one_out(gallery[:3], np.array([0, 0, 1]), (1,))
    assert loo.recall[1] == 2 / 3 and loo.num_queries_left_out_of_recall == 0
    assert "left out of MAP@R and RP" in str(loo)


def test_from_dict_rejects_incomplete_input():
    data = METRICS.to_dict()
    del data["map@r"]
    with pytest.raises(InputError, match="map@r"):
        RetrievalMetrics.from_dict(data)


def test_table_shows_percent_with_one_decimal():
    header, values, note = str(METRICS).splitlines()
    assert header.split() == ["R@1", "R@10", "R@100", "R@1000", "MAP@R", "RP"]
    assert values.split() == ["65.2", "84.0", "93.1", "98.8", "24.5", "35.6"]
    assert "60502 queries" in note
    with_nmi = RetrievalMetrics(**{**METRICS.__dict__, "nmi": 0.8991, "num_queries_without_relevant": 4})
    header, values, note = str(with_nmi).splitlines()
    assert header.split()[-1] == "NMI" and values.split()[-1] == "89.9"
    assert "4 without a same-label item" in note


def test_primary_is_recall_at_1():
    assert METRICS.primary == 0.6523


def test_protocols():
    assert {name: (p.kind, p.ks) for name, p in PROTOCOLS.items()} == {
        "cub200": ("leave_one_out", (1, 2, 4, 8)),
        "cars196": ("leave_one_out", (1, 2, 4, 8)),
        "sop": ("leave_one_out", (1, 10, 100, 1000)),
        "inshop": ("query_gallery", (1, 10, 20, 30, 40, 50)),
        "digits": ("leave_one_out", (1, 2, 4, 8)),
        "folder": ("leave_one_out", (1, 2, 4, 8)),
    }


def blobs(seed, num_classes=6, per_class=30, spread=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_classes, 12))
    labels = np.repeat(np.arange(num_classes), per_class)
    return (centres[labels] + spread * rng.standard_normal((len(labels), 12))).astype(np.float32), labels


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_nmi_is_high_for_separated_classes_and_low_for_shuffled_labels():
    x, y = blobs(0)
    x = unit(x)
    shuffled = np.random.default_rng(0).permutation(y)
    # random k-means initialisation may merge two blobs, so not exactly 1
    assert clustering_nmi(x, y) > 0.8
    assert clustering_nmi(x, shuffled) < 0.3
    assert clustering_nmi(x, y, seed=5) == clustering_nmi(x, y, seed=5)  # seeded: repeatable


def test_nmi_is_computed_only_when_asked_and_on_the_queries():
    x, y = blobs(2, spread=0.8)
    assert evaluate_leave_one_out(x, y).nmi is None
    assert evaluate_leave_one_out(x, y, compute_nmi=True, seed=4).nmi == clustering_nmi(unit(x), y, seed=4)
    metrics = evaluate_query_gallery(x[::2], y[::2], x[1::2], y[1::2], compute_nmi=True, seed=4)
    assert metrics.nmi == clustering_nmi(unit(x[::2]), y[::2], seed=4)
