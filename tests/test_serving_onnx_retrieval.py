"""Retrieval on onnxruntime: `index --model M.onnx`, fingerprints across a checkpoint and its export, no torch."""
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from serving_world import CLASSES, build_world, make_checkpoint

from gcahng.cli.main import cli
from gcahng.retrieval import Index
from gcahng.serving.export import export_onnx
from gcahng.serving.onnx_format import file_sha256


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("onnx_retrieval"))


def _retrieve(*args):
    return CliRunner().invoke(cli, ["retrieve", *map(str, args)])


def test_index_built_from_onnx_records_its_sha256_and_source(world):
    meta = json.loads((world["index_onnx"] / "index.json").read_text())["model"]
    assert meta["kind"] == "onnx" and meta["path"] == str(world["onnx"].resolve())
    assert meta["fingerprint"] == file_sha256(world["onnx"])
    ckpt_meta = json.loads((world["index_ckpt"] / "index.json").read_text())["model"]
    assert meta["source_fingerprint"] == ckpt_meta["fingerprint"] and ckpt_meta["kind"] == "checkpoint"


def test_onnx_and_checkpoint_indexes_agree(world):
    a, b = Index.load(world["index_ckpt"]), Index.load(world["index_onnx"])
    ids = np.arange(len(a))
    np.testing.assert_allclose(a.faiss_index.reconstruct_batch(ids), b.faiss_index.reconstruct_batch(ids), atol=1e-4)


@pytest.mark.parametrize("index_name, model",
                         [("index_onnx", None), ("index_ckpt", "onnx"), ("index_onnx", "checkpoint")])
def test_every_gallery_image_is_its_own_first_hit_across_kinds(world, index_name, model):
    args = ["--model", world[model]] if model else []
    result = _retrieve("--query", world["gallery"], "--index", world[index_name], "-k", 2, "--json", *args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"]["kind"] == ("onnx" if model in (None, "onnx") else "checkpoint")
    assert len(report["queries"]) == len(CLASSES) * 5
    for entry in report["queries"]:
        assert entry["results"][0]["path"] == entry["query"]


def test_export_of_another_checkpoint_is_refused(world, tmp_path):
    other = export_onnx(make_checkpoint(tmp_path / "other.pt", seed=3), tmp_path / "other.onnx").path
    for index_name in ("index_ckpt", "index_onnx"):
        result = _retrieve("--query", world["gallery"] / "apple" / "0.png", "--index", world[index_name],
                           "--model", other)
        assert result.exit_code != 0 and "built by a different model" in result.output


def test_onnx_path_imports_no_torch(world):
    code = (
        "import sys, json\n"
        "from gcahng.cli.main import cli\n"
        f"cli(['retrieve', '--query', {str(world['gallery'] / 'pear' / '1.png')!r}, "
        f"'--index', {str(world['index_onnx'])!r}, '-k', '3', '--json'], standalone_mode=False)\n"
        "import gcahng\n"
        "index = gcahng.Index.load(" + repr(str(world["index_onnx"])) + ")\n"
        "hits = index.query([" + repr(str(world["gallery"] / "plum" / "2.png")) + "], k=1)[0]\n"
        "print(json.dumps({'first': hits[0].path, 'loaded': sorted(m for m in ('torch', 'torchvision', "
        "'torch_geometric') if m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    last = json.loads(out.strip().splitlines()[-1])
    assert json.loads(out[: out.rindex("\n{")])["queries"][0]["results"][0]["path"].endswith("pear/1.png")
    assert last == {"first": str(world["gallery"] / "plum" / "2.png"), "loaded": []}


def test_an_export_of_the_same_checkpoint_at_another_size_is_refused(world, tmp_path):
    larger = export_onnx(world["checkpoint"], tmp_path / "m64.onnx", image_size=64).path
    for index_name in ("index_ckpt", "index_onnx"):
        result = _retrieve("--query", world["gallery"] / "apple" / "0.png", "--index", world[index_name],
                           "--model", larger)
        assert result.exit_code != 0 and "preprocesses images differently" in result.output
        assert "image_size 32 (index) against 64" in result.output, result.output
