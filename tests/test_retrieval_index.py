import json

import faiss
import numpy as np
import pytest

from gcahng.errors import CheckpointError, InputError
from gcahng.retrieval.ann import recall_against_exact
from gcahng.retrieval.index import Index, ModelRecord, l2_normalise

MODEL = ModelRecord(kind="checkpoint", path="/nowhere/model.pt", fingerprint="f" * 32,
                    model_spec={"backbone": "tiny_cnn", "embedding_dim": 16})


def _gallery(n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    paths = [f"img/{i:04d}.jpg" for i in range(n)]
    labels = [f"c{i % 7}" for i in range(n)]
    return vectors, paths, labels


def _brute_force(gallery, queries, k):
    sims = l2_normalise(queries) @ l2_normalise(gallery).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.mark.parametrize("num_queries", [3, 40])  # one-thread and multi-thread searches
def test_flat_search_matches_brute_force(num_queries):
    vectors, paths, labels = _gallery()
    index = Index.build(vectors, paths, labels, MODEL)
    queries = np.random.default_rng(1).standard_normal((num_queries, 16)).astype(np.float32) * 3.0
    threads = faiss.omp_get_max_threads()
    results = index.search(queries, k=5)
    assert faiss.omp_get_max_threads() == threads  # restored
    scores, ids = _brute_force(vectors, queries, 5)
    np.testing.assert_array_equal(results.ids, ids)
    np.testing.assert_allclose(results.scores, scores, atol=1e-5)
    first = results[0]
    assert [hit.rank for hit in first] == [1, 2, 3, 4, 5]
    assert first[0].path == paths[ids[0, 0]] and first[0].label == labels[ids[0, 0]]


def test_each_gallery_item_is_its_own_first_hit():
    vectors, paths, labels = _gallery()
    results = Index.build(vectors, paths, labels, MODEL).search(vectors, k=3)
    np.testing.assert_array_equal(results.ids[:, 0], np.arange(len(paths)))
    np.testing.assert_allclose(results.scores[:, 0], 1.0, atol=1e-5)


def _files(root, paths):
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"")
    return [str(root / path) for path in paths]


def test_save_load_round_trip(tmp_path):
    vectors, paths, labels = _gallery()
    paths = _files(tmp_path, paths)
    built = Index.build(vectors, paths, labels, MODEL, index_type="hnsw", params={"ef_search": 64},
                        source={"images": str(tmp_path)})
    built.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert loaded.paths == built.paths and loaded.labels == labels
    assert loaded.model == MODEL and loaded.index_type == "hnsw"
    assert loaded.params["ef_search"] == 64 and loaded.faiss_index.hnsw.efSearch == 64
    assert loaded.recall == pytest.approx(built.recall) and loaded.source == {"images": str(tmp_path)}
    np.testing.assert_array_equal(loaded.search(vectors[:9], 4).ids, built.search(vectors[:9], 4).ids)


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_recall_is_measured_like_brute_force(index_type):
    vectors, paths, labels = _gallery(n=2000, d=16)
    index = Index.build(vectors, paths, labels, MODEL, index_type=index_type)
    sample = np.random.default_rng(0).choice(2000, size=1000, replace=False)
    _, exact = _brute_force(vectors, vectors[sample], 10)
    approx = index.search(vectors[sample], 10).ids
    expected = np.mean([len(set(e) & set(a)) / 10 for e, a in zip(exact, approx, strict=False)])
    assert index.recall == pytest.approx(expected, abs=2e-3)
    assert 0.5 < index.recall <= 1.0


def test_recall_of_exact_index_is_one():
    vectors = l2_normalise(_gallery()[0])
    exact = Index.build(vectors, _gallery()[1], None, MODEL).faiss_index
    assert recall_against_exact(exact, vectors, k=10, sample=50) == pytest.approx(1.0)


def test_k_beyond_gallery_is_reduced_and_query_dim_checked():
    vectors, paths, labels = _gallery(n=4)
    index = Index.build(vectors, paths, labels, MODEL)
    assert index.search(vectors[0], k=10).ids.shape == (1, 4)
    with pytest.raises(InputError, match=r"\(Q, 16\)"):
        index.search(np.zeros((2, 8), np.float32))
    with pytest.raises(InputError, match="k must be"):
        index.search(vectors, k=0)


def test_build_rejects_mismatched_inputs():
    vectors, paths, labels = _gallery(n=5)
    with pytest.raises(InputError, match="5 embeddings for 4 paths"):
        Index.build(vectors, paths[:4], None, MODEL)
    with pytest.raises(InputError, match="the model 16"):
        Index.build(vectors[:, :8], paths, None, MODEL)
    with pytest.raises(InputError, match="unknown index type"):
        Index.build(vectors, paths, None, MODEL, index_type="lsh")


def test_label_of_gallery_image_and_class_folder(tmp_path):
    (tmp_path / "cat").mkdir()
    cat = tmp_path / "cat" / "a.jpg"
    cat.write_bytes(b"")
    vectors = _gallery(n=2)[0]
    index = Index.build(vectors, [cat, tmp_path / "dog.jpg"], ["kitty", "dog"], MODEL)
    assert index.paths[0] == str(cat.resolve())
    assert index.label_of(cat) == "kitty"  # gallery label wins over the folder name
    assert index.label_of(tmp_path / "queries" / "dog" / "q.jpg") == "dog"
    assert index.label_of(tmp_path / "queries" / "cow" / "q.jpg") is None


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no gcahng index at .*missing index.json"):
        Index.load(tmp_path / "absent")
    vectors, paths, labels = _gallery(n=5)
    paths = _files(tmp_path, paths)
    Index.build(vectors, paths, labels, MODEL).save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    (tmp_path / "idx" / "index.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(CheckpointError, match="index version 99"):
        Index.load(tmp_path / "idx")
    (tmp_path / "idx" / "index.json").write_text(json.dumps(meta))
    (tmp_path / "idx" / "gallery.json").write_text(json.dumps({"items": ["img/0000.jpg"] * 3, "labels": None}))
    with pytest.raises(CheckpointError, match="items: 3 entries but .* says num_items 5"):
        Index.load(tmp_path / "idx")
    (tmp_path / "idx" / "index.faiss").write_bytes(b"garbage")
    (tmp_path / "idx" / "gallery.json").write_text(json.dumps({"items": ["img/0000.jpg"] * 5, "labels": None}))
    with pytest.raises(CheckpointError, match="corrupt index file .*index.faiss"):
        Index.load(tmp_path / "idx")
