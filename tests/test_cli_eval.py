"""``gcahng eval``: our checkpoints and the authors' released files, against a direct evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from release_keys import release_state_dict

from gcahng.cli.main import cli
from gcahng.config import TrainConfig
from gcahng.data import create_dataset
from gcahng.evaluation import evaluate_leave_one_out
from gcahng.models import create_embedding_model, load_reference_embedding_state_dict
from gcahng.preprocess import TestPreprocess
from gcahng.training.trainer import Trainer


def _eval(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_our_checkpoint_scores_as_the_run_reported(tmp_path: Path) -> None:
    cfg = TrainConfig(backbone="tiny_cnn", embedding_dim=16, image_size=16, resize_size=16, pretrained=False,
                      classes_per_batch=5, per_class=8, gcl_iterations=1, heads=2, epochs=1, warmup_epochs=0,
                      selection="last", val_fraction=None, device="cpu", workers=0)
    Trainer(cfg, tmp_path / "run", progress=False, log=lambda _: None).fit()
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    code, output = _eval([str(best), "--device", "cpu"])
    assert code == 0, output
    assert "MAP@R" in output and "on digits (test)" in output
    written = json.loads((best.parent / "best.digits-test.json").read_text())
    reported = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert written["metrics"] == reported["metrics"]
    code, output = _eval([str(best), "--device", "cpu"])  # an earlier result of eval is renewed
    assert code == 0, output
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}\n')
    code, output = _eval([str(best), "--device", "cpu", "--out", str(notes)])
    assert code != 0 and f"--out {notes} exists and is not a result of `gcahng eval`" in output
    assert notes.read_text() == '{"mine": true}\n'  # a user's file is never overwritten


def _folder(root: Path) -> Path:
    """4 classes x 3 images; the folder dataset's test split is the last 2 classes."""
    rng = np.random.default_rng(1)
    for c in range(4):
        for i in range(3):
            (root / f"c{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "RGB").save(root / f"c{c}" / f"{i}.png")
    return root




def _direct_metrics(state_dict: dict[str, torch.Tensor], root: Path) -> dict:
    """The slow, obvious path: load by the models' mapping, embed image by image, score."""
    model = create_embedding_model("resnet50", 512, pretrained=False, image_size=224, resize_size=256)
    load_reference_embedding_state_dict(model, state_dict)
    model.eval()
    transform = TestPreprocess(224, 256, model.spec.mean, model.spec.std)
    test = create_dataset("folder", root, "test")
    with torch.no_grad():
        batch = torch.from_numpy(transform.batch([Image.open(p).convert("RGB") for p in test.paths]))
        z = F.normalize(model(batch), dim=1)
    return evaluate_leave_one_out(z.numpy(), test.labels).to_dict()


@pytest.mark.parametrize("layout", ["full", "metric_model"])
def test_released_checkpoints_map_onto_our_network_and_evaluate(tmp_path: Path, layout: str) -> None:
    full = release_state_dict("resnet50_K2.tsv")
    if layout == "full":
        saved: dict = full
    else:  # metric model only, without the prefix, DataParallel-wrapped and nested
        saved = {"state_dict": {"module." + k.removeprefix("feature_extractor."): v
                                for k, v in full.items() if k.startswith("feature_extractor.")}}
    torch.save(saved, tmp_path / "release.pth")
    root = _folder(tmp_path / "images")
    out = tmp_path / "metrics.json"
    code, output = _eval([str(tmp_path / "release.pth"), "folder", "--data-root", str(root), "--device", "cpu",
                          "--out", str(out)])
    assert code == 0, output
    written = json.loads(out.read_text())
    assert written["spec"]["backbone"] == "resnet50" and written["spec"]["embedding_dim"] == 512
    assert written["metrics"] == pytest.approx(_direct_metrics(full, root), abs=1e-6)


def test_eval_errors_are_clear(tmp_path: Path) -> None:
    torch.save(release_state_dict("resnet50_K1.tsv"), tmp_path / "release.pth")
    code, output = _eval([str(tmp_path / "release.pth")])
    assert code != 0 and "give DATASET" in output
    (tmp_path / "junk.pt").write_bytes(b"junk")
    code, output = _eval([str(tmp_path / "junk.pt"), "digits"])
    assert code != 0 and "junk.pt is not a PyTorch checkpoint file" in output
    code, output = _eval([str(tmp_path / "missing.pt"), "digits"])
    assert code != 0 and "checkpoint not found" in output
    torch.save({"fc.1.weight": torch.zeros(4, 3)}, tmp_path / "head_only.pt")
    code, output = _eval([str(tmp_path / "head_only.pt"), "digits"])
    assert code != 0 and "matches none of the registered backbones" in output
