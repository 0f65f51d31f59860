"""`gcahng index` then `gcahng retrieve` on generated images, and every error of `retrieve`."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.models.embedding import create_embedding_model
from gcahng.retrieval import Index, load, read_checkpoint
from gcahng.viz.grid import BORDER, CAPTION, GAP, MATCH, MISMATCH, QUERY, grid_size

CLASSES, PER_CLASS = ("apple", "pear", "plum"), 4


def _checkpoint(path, seed=0, dim=8):
    torch.manual_seed(seed)
    model = create_embedding_model("tiny_cnn", dim, pretrained=False, image_size=32)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict(), "optimizer": {"lr": 0.1}, "epoch": 7}, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrieval")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / "gallery" / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (30 + 7 * i, 44, 3), dtype=np.uint8)
            pixels[..., c] = 255  # each class has its own dominant channel
            Image.fromarray(pixels).save(root / "gallery" / name / f"{i}.png")
    (root / "gallery" / "pear" / "broken.jpg").write_bytes(b"truncated")
    ckpt = _checkpoint(root / "model.pt")
    result = CliRunner().invoke(cli, ["index", str(ckpt), "--images", str(root / "gallery"),
                                      "--out", str(root / "index"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    return root, ckpt, result.output


def _retrieve(*args):
    return CliRunner().invoke(cli, ["retrieve", *map(str, args)])


def test_index_writes_sidecar_and_lists_skipped_images(world):
    root, ckpt, output = world
    assert "indexed 12 images, 3 classes (8-d, flat)" in output
    assert "skipped 1 unreadable image(s)" in output and "broken.jpg" in output
    assert (root / "index" / "skipped.txt").read_text().startswith(str(root / "gallery" / "pear" / "broken.jpg"))
    meta = json.loads((root / "index" / "index.json").read_text())
    assert meta["embedding_dim"] == 8 and meta["normalisation"] == "l2" and meta["index_type"] == "flat"
    assert meta["model"]["fingerprint"] == read_checkpoint(ckpt).fingerprint
    assert meta["model"]["path"] == str(ckpt.resolve())
    assert meta["source"]["skipped"] == 1
    index = Index.load(root / "index")
    assert sorted(set(index.labels)) == list(CLASSES) and len(index) == 12


def test_every_gallery_image_is_its_own_first_hit_json_schema(world):
    root, ckpt, _ = world
    pears = [arg for i in range(PER_CLASS) for arg in ("--query", root / "gallery" / "pear" / f"{i}.png")]
    result = _retrieve("--query", root / "gallery" / "apple", "--query", root / "gallery" / "plum", *pears,
                       "--index", root / "index", "-k", 3, "--json")  # a folder means every image in it
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"index", "checkpoint", "k", "queries"} and report["k"] == 3
    assert report["checkpoint"] == str(ckpt.resolve())
    assert len(report["queries"]) == 12
    for entry in report["queries"]:
        assert set(entry) == {"query", "label", "results"}
        assert entry["label"] == entry["query"].split("/")[-2]
        assert [hit["rank"] for hit in entry["results"]] == [1, 2, 3]
        for hit in entry["results"]:
            assert set(hit) == {"rank", "path", "score", "label", "match"}
            assert hit["match"] == (hit["label"] == entry["label"])
        first = entry["results"][0]
        assert first["path"] == entry["query"] and first["score"] == pytest.approx(1.0, abs=1e-4)
        scores = [hit["score"] for hit in entry["results"]]
        assert scores == sorted(scores, reverse=True)


def test_text_output_and_python_api_agree(world):
    root, ckpt, _ = world
    query = root / "gallery" / "plum" / "2.png"
    result = _retrieve("--query", query, "--index", root / "index", "-k", 4)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"query {query}  [plum]" and len(lines) == 5
    hits = Index.load(root / "index").query([query], k=4, embedder=load(ckpt))[0]
    for line, hit in zip(lines[1:], hits, strict=False):
        rank, score, path = line.split()[:3]
        assert (int(rank), path) == (hit.rank, hit.path) and float(score) == pytest.approx(hit.score, abs=1e-4)


def test_show_writes_grid_with_one_tile_per_result(world):
    root, ckpt, _ = world
    queries = [root / "gallery" / "apple" / "0.png", root / "gallery" / "pear" / "1.png"]
    out, thumb, k = root / "show" / "grid.png", 48, 5
    result = _retrieve("--query", queries[0], "--query", queries[1], "--index", root / "index",
                       "-k", k, "--show", out, "--thumb-size", thumb)
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == grid_size(2, k + 1, thumb)
        canvas = image.convert("RGB")
    frames = [[canvas.getpixel((GAP + c * (thumb + 2 * BORDER + GAP) + 1,
                                GAP + r * (thumb + 2 * BORDER + CAPTION + GAP) + 1)) for c in range(k + 1)]
              for r in range(2)]
    results = Index.load(root / "index").query(queries, k=k, embedder=load(ckpt))
    for row, query, hits in zip(frames, queries, results, strict=False):
        assert row[0] == QUERY
        assert row[1:] == [MATCH if hit.label == query.parent.name else MISMATCH for hit in hits]
        assert MISMATCH in row  # k = 5 > 4 images per class


def test_unreadable_query_is_an_error_naming_it(world):
    root, _, _ = world
    result = _retrieve("--query", root / "gallery" / "pear" / "broken.jpg", "--index", root / "index")
    assert result.exit_code != 0 and "Error:" in result.output and "broken.jpg" in result.output
    result = _retrieve("--query", root / "nope.jpg", "--index", root / "index")
    assert result.exit_code != 0 and "query not found" in result.output


def test_missing_index_is_an_error(world, tmp_path):
    root, _, _ = world
    result = _retrieve("--query", root / "gallery" / "apple" / "0.png", "--index", tmp_path / "none")
    assert result.exit_code != 0 and "no gcahng index at" in result.output


def test_index_of_another_model_or_size_is_refused(world, tmp_path):
    root, _, _ = world
    query = root / "gallery" / "apple" / "0.png"
    other = _checkpoint(tmp_path / "other.pt", seed=1)
    result = _retrieve("--query", query, "--index", root / "index", "--checkpoint", other)
    assert result.exit_code != 0 and "built by a different model" in result.output
    wider = _checkpoint(tmp_path / "wide.pt", dim=16)
    result = _retrieve("--query", query, "--index", root / "index", "--checkpoint", wider)
    assert result.exit_code != 0 and "8-d embeddings" in result.output and "16-d" in result.output


def test_moved_checkpoint_needs_and_accepts_override(world, tmp_path):
    root, ckpt, _ = world
    shutil.copytree(root / "index", tmp_path / "index")
    meta = json.loads((tmp_path / "index" / "index.json").read_text())
    meta["model"]["path"] = str(tmp_path / "gone.pt")
    (tmp_path / "index" / "index.json").write_text(json.dumps(meta))
    query = root / "gallery" / "apple" / "0.png"
    result = _retrieve("--query", query, "--index", tmp_path / "index")
    assert result.exit_code != 0 and "no longer exists" in result.output and "--checkpoint" in result.output
    # a re-saved copy of the same weights has the same fingerprint, so it is accepted
    payload = torch.load(ckpt, weights_only=True)
    torch.save({k: payload[k] for k in ("format", "version", "model_spec", "model")}, tmp_path / "copy.pt")
    result = _retrieve("--query", query, "--index", tmp_path / "index", "--checkpoint", tmp_path / "copy.pt", "-k", 1)
    assert result.exit_code == 0, result.output
    assert str(query) in result.output.splitlines()[1]


def test_approximate_index_prints_recall(world, tmp_path):
    root, ckpt, _ = world
    result = CliRunner().invoke(cli, ["index", str(ckpt), "--images", str(root / "gallery"), "--out",
                                      str(tmp_path / "hnsw"), "--index-type", "hnsw", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "recall@10 against exact search: 1.0000" in result.output  # 12 images: HNSW is exact here
    assert Index.load(tmp_path / "hnsw").index_type == "hnsw"


def test_dataset_gallery_uses_class_names(tmp_path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    result = CliRunner().invoke(cli, ["index", str(ckpt), "digits", "--split", "test",
                                      "--out", str(tmp_path / "idx"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    index = Index.load(tmp_path / "idx")
    assert index.source["dataset"] == "digits" and len(set(index.labels)) >= 2
    result = CliRunner().invoke(cli, ["index", str(ckpt), "digits", "--images", str(tmp_path),
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "exactly one gallery" in result.output


def test_retrieve_does_not_import_training_or_plotting_libraries(world):
    root, _, _ = world
    code = (
        "import sys\n"
        "from gcahng.cli.main import main\n"
        f"sys.argv = ['gcahng', 'retrieve', '--query', {str(root / 'gallery' / 'apple' / '0.png')!r},"
        f" '--index', {str(root / 'index')!r}, '-k', '2']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('LOADED', sorted(m for m in ('torch_geometric', 'sklearn', 'matplotlib', 'timm') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
