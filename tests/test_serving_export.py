"""`gcahng export`: every built-in backbone to ONNX, verified against PyTorch; metadata; no overwrite."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from serving_world import make_checkpoint, make_gallery

from gcahng.cli.main import cli
from gcahng.preprocess import TestPreprocess
from gcahng.retrieval import load, read_checkpoint
from gcahng.serving import export as export_module
from gcahng.serving.export import TOLERANCE, ExportError, export_onnx


@pytest.mark.parametrize("backbone, image_size", [
    ("tiny_cnn", 32), ("resnet18", 64), ("resnet50", 64), ("googlenet", 64), ("dino_vits16", 32),
    ("efficientnet_lite0", 64),
])
def test_every_builtin_backbone_exports_and_matches_pytorch(tmp_path, backbone, image_size):
    ckpt = make_checkpoint(tmp_path / "m.pt", backbone, image_size, dim=16)
    report = export_onnx(ckpt, tmp_path / "m.onnx")
    assert report.max_abs_diff <= TOLERANCE and report.image_size == image_size and report.embedding_dim == 16
    # independently: a batch size other than the traced one (dynamic axis), against PyTorch
    rng = np.random.default_rng(1)
    batch = rng.normal(size=(5, 3, image_size, image_size)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"images": batch})[0]
    expected = load(ckpt).embed_batch(torch.from_numpy(batch))
    assert got.shape == (5, 16)
    assert np.abs(got - expected).max() <= TOLERANCE
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.ptp(got, axis=0).max() > 1e-3  # the embeddings depend on the image


def test_metadata_describes_preprocessing_size_and_source(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt, tmp_path / "m.onnx", image_size=24)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["gcahng.format"] == "gcahng-onnx-embedder" and meta["gcahng.embedding_dim"] == "8"
    assert meta["gcahng.source_fingerprint"] == read_checkpoint(ckpt).fingerprint
    pre = TestPreprocess.from_dict(json.loads(meta["gcahng.preprocess"]))
    assert (pre.image_size, pre.resize_size) == (24, round(24 * 256 / 224))
    assert json.loads(meta["gcahng.preprocess"])["channel_order"] == "RGB"
    assert json.loads(meta["gcahng.model_spec"])["image_size"] == 24


def test_cli_refuses_to_overwrite_without_force_and_verifies_on_images(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(out)])
    assert result.exit_code != 0 and "Error:" in result.output and "--force" in result.output
    assert out.read_bytes() == b"precious"
    gallery = make_gallery(tmp_path / "g")
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(out), "--force", "--images", str(gallery)])
    assert result.exit_code == 0, result.output
    assert "on 8 images" in result.output and out.read_bytes()[:8] != b"precious"


def test_failed_verification_fails_and_leaves_no_file(tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(ckpt, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == [ckpt]


def test_low_opset_and_missing_checkpoint_are_clear_errors(tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code != 0 and "checkpoint not found" in result.output
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "none.pt"), "--out", "x.onnx", "--opset", "17"])
    assert result.exit_code != 0 and "17" in result.output


def test_options_out_of_range_and_the_checkpoint_as_out_are_refused(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    before = ckpt.read_bytes()
    for args, message in ((["--opset", "99"], "opset must be between 18 (torch's ONNX exporter) and "),
                          (["--image-size", "100000"], "--image-size must be between 8 and 2048 pixels, got 100000"),
                          (["--image-size", "4"], "--image-size must be between 8 and 2048 pixels, got 4")):
        result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(tmp_path / "m.onnx"), *args])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(ckpt), "--force"])
    assert result.exit_code != 0 and "is the checkpoint being exported; it is never overwritten" in result.output
    assert ckpt.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_export_writes_through_a_unique_temporary_and_leaves_other_files_alone(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "new folder" / "m.onnx"
    out.parent.mkdir()
    neighbour = out.with_name("m.onnx.tmp")  # a name an export once used for its temporary
    neighbour.write_bytes(b"the user's")
    export_onnx(ckpt, out)
    assert neighbour.read_bytes() == b"the user's"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx", "m.onnx.tmp"]
    export_onnx(ckpt, tmp_path / "made" / "m.onnx")  # a missing folder is created
    assert (tmp_path / "made" / "m.onnx").is_file()


def test_edited_preprocessing_metadata_is_refused(tmp_path):
    import onnx

    from gcahng.errors import CheckpointError
    from gcahng.serving.onnx_embedder import OnnxEmbedder

    path = export_onnx(make_checkpoint(tmp_path / "m.pt"), tmp_path / "m.onnx").path
    for change, message in (({"std": [0.0, 0.2, 0.2]}, "need finite mean and std > 0"),
                            ({"center_crop": 16, "resize_shorter_side": 18}, "crops 16 x 16 pixels but the network "
                                                                            "takes 32 x 32")):
        model = onnx.load(path)
        entry = next(e for e in model.metadata_props if e.key == "gcahng.preprocess")
        entry.value = json.dumps(json.loads(entry.value) | change)
        onnx.save(model, tmp_path / "edited.onnx")
        with pytest.raises(CheckpointError, match=f"edited.onnx has malformed gcahng metadata: .*{message}"):
            OnnxEmbedder(tmp_path / "edited.onnx")
