"""``gcahng fit`` end to end: run folders, metric ranges, errors, NaN stops and crash-safe resume.

The resume tests really kill a training process with SIGKILL (once between epochs, once in
the middle of a checkpoint write) and compare the resumed run's final metrics with an
uninterrupted run's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.formats.atomic import is_temporary
from gcahng.formats.checkpoint import WRITE_DELAY_ENV
from gcahng.models import BACKBONES
from gcahng.retrieval import load

# a tiny network on 16x16 digits: 22 iterations of 5 classes x 8 images per epoch
TINY = ["--device", "cpu", "--workers", "0", "--no-progress", "--embedding-dim", "16", "--image-size", "16",
        "--per-class", "8", "--set", "resize_size=16", "--set", "eval_every=1"]


def _fit(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["fit", *args], catch_exceptions=False)
    return result.exit_code, result.output


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_digits_run_folder_holds_config_metrics_checkpoints_and_the_test_table(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, output = _fit([*TINY, "--epochs", "2", "--out", str(run)])
    assert code == 0, output
    assert "no DATASET given: training on the embedded 'digits' set" in output
    assert "model selection: none, best.pt is the last epoch" in output
    assert "MAP@R" in output and "R@1" in output
    baselines = output[output.index("baselines on the test split"):]
    assert all(name in baselines for name in ("trained network", "untrained network", "raw pixels"))
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.jsonl", "checkpoints", "tensorboard",
                                                 "test_metrics.json"}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["dataset"] == "digits" and saved["epochs"] == 2 and saved["embedding_dim"] == 16
    records = _records(run)
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert set(record["loss"]) >= {"J_m", "J_syn", "J_gce", "J_gen", "J_cls"}
        assert all(np.isfinite(v) for v in record["loss"].values())
        assert record["time_s"] > 0 and record["eval"]["split"] == "test"
        assert 0.0 <= record["eval"]["map@r"] <= record["eval"]["recall@1"] <= 1.0
    table = json.loads((run / "test_metrics.json").read_text())
    assert table["epoch"] == 2 and table["selection"] == "last"
    assert table["metrics"]["num_queries"] == 896  # digits 5-9
    assert {k: v for k, v in records[-1]["eval"].items() if k != "split"} == table["metrics"]
    # best.pt is readable by the retrieval side and embeds into D = 16
    embedder = load(run / "checkpoints" / "best.pt")
    assert embedder.embed(torch.zeros(2, 3, 16, 16)).shape == (2, 16)


def _folder_dataset(root: Path, classes: int = 6, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        base = rng.integers(0, 256, (3,))
        for i in range(per_class):
            pixels = np.clip(base + rng.normal(0, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
            (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "RGB").save(root / f"class_{c}" / f"{i}.png")
    return root


def test_folder_dataset_selects_best_on_a_held_out_validation_class_split(tmp_path: Path) -> None:
    data = _folder_dataset(tmp_path / "images")
    run = tmp_path / "run"
    code, output = _fit(["folder", "--data-root", str(data), "--backbone", "tiny_cnn", "--no-pretrained",
                         *TINY, "--classes-per-batch", "2", "--per-class", "2", "--epochs", "2",
                         "--set", "val_count=1", "--set", "val_fraction=null", "--set", "eval_every=1",
                         "--set", "warmup_epochs=1", "--out", str(run)])
    assert code == 0, output
    assert "config: defaults (no preset for folder with tiny_cnn)" in output
    assert "best map@r on a held-out validation split (1 training classes, 6 images)" in output
    records = _records(run)
    assert [r["eval"]["split"] for r in records] == ["val", "val"]
    table = json.loads((run / "test_metrics.json").read_text())
    best_epoch = 1 + int(np.argmax([r["eval"]["map@r"] for r in records]))
    assert table["epoch"] == best_epoch and table["selection"] == "val"
    assert table["metrics"]["num_queries"] == 18  # the 3 test classes


def test_clear_errors_for_bad_input(tmp_path: Path) -> None:
    code, output = _fit(["cub200", "--no-pretrained", "--data-root", str(tmp_path / "nowhere")])
    assert code != 0 and "gcahng data download cub200" in output and "Traceback" not in output
    code, output = _fit(["--config", str(tmp_path / "missing.yaml")])
    assert code != 0 and "missing.yaml' does not exist" in output
    code, output = _fit(["--set", "alpha=high"])
    assert code != 0 and "config key 'alpha' must be number, got 'high'" in output
    for args, message in [(["--seed", "-1"], "config key 'seed' must be between 0 and 4294967295"),
                          (["--seed", str(2**32)], "config key 'seed' must be between 0 and 4294967295"),
                          (["--set", "decay_gamma=0"], "config key 'decay_gamma' must be > 0"),
                          (["--set", "alpha=.nan"], "config key 'alpha' must be a finite number, got nan")]:
        code, output = _fit([*args, "--out", str(tmp_path / "r")])
        assert code != 0 and f"Error: with the overrides: {message}" in output and "Traceback" not in output, output
    (tmp_path / "latin1.yaml").write_bytes("epochs: 3 # \xe9t\xe9\n".encode("latin-1"))
    code, output = _fit(["--config", str(tmp_path / "latin1.yaml")])
    assert code != 0 and "latin1.yaml' is not UTF-8 text" in output and "Traceback" not in output
    code, output = _fit(["--resume", str(tmp_path)])
    assert code != 0 and "no config.yaml there" in output
    code, output = _fit(["--resume", str(tmp_path), "--epochs", "3"])
    assert code != 0 and "drop epochs" in output
    code, output = _fit(["--classes-per-batch", "41", *TINY, "--out", str(tmp_path / "r")])
    assert code != 0 and "has only 40 classes" in output and "5 x 8 orientations" in output
    assert not (tmp_path / "r").exists()
    code, output = _fit(
        ["--classes-per-batch", "6", "--class-augmentation", "none", *TINY, "--out", str(tmp_path / "r")]
    )
    assert code != 0 and "has only 5 classes" in output and not (tmp_path / "r").exists()


def test_a_new_run_refuses_a_folder_of_the_users_and_leaves_it_untouched(tmp_path: Path) -> None:
    users = tmp_path / "thesis"
    (users / "checkpoints").mkdir(parents=True)
    files = {"metrics.jsonl": b'{"mine": 1}\n', "test_metrics.json": b"{}", "thesis.tex": b"\\section{}",
             "checkpoints/.notes.abcdef12.tmp": b"draft"}
    for name, data in files.items():
        (users / name).write_bytes(data)
    before = sorted(p.relative_to(users) for p in users.rglob("*"))
    for resume in ([], ["--resume", "auto"]):
        code, output = _fit([*TINY, "--epochs", "1", "--out", str(users), *resume])
        assert code != 0 and f"--out {users} is not empty (it holds checkpoints, metrics.jsonl, " in output
        assert "and is not a gcahng run" in output and "Traceback" not in output, output
    assert sorted(p.relative_to(users) for p in users.rglob("*")) == before  # not even a lock file was added
    assert all((users / name).read_bytes() == data for name, data in files.items())
    # what a run killed before its config was written leaves is fine: its lock and an empty checkpoints/
    (tmp_path / "killed" / "checkpoints").mkdir(parents=True)
    (tmp_path / "killed" / ".gcahng.lock").write_bytes(b"")
    from gcahng.training.trainer import check_new_run_folder

    check_new_run_folder(tmp_path / "killed")
    check_new_run_folder(tmp_path / "new")
    (tmp_path / "killed" / "config.yaml").write_text("epochs: 1\n")
    with pytest.raises(Exception, match="already holds a run; continue it with --resume"):
        check_new_run_folder(tmp_path / "killed")


def test_offline_pretrained_weights_name_the_alternatives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline() -> dict:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(BACKBONES.get("resnet18"), "download_pretrained", staticmethod(offline))
    code, output = _fit(["--backbone", "resnet18", "--set", "pretrained=true", *TINY, "--out", str(tmp_path / "run")])
    assert code != 0
    assert "--weights PATH" in output and "--no-pretrained" in output and "Traceback" not in output
    assert not (tmp_path / "run").exists()


NAN_PLUGIN = '''
import torch
from gcahng.models import BACKBONES
from gcahng.models.tiny_cnn import TinyCNN

@BACKBONES.register("nan_in_epoch_2")
class NanInEpoch2(TinyCNN):
    """TinyCNN whose training forward passes turn NaN from the 23rd on (epoch 2: 901 images
    in batches of 5 x 8 without class augmentation)."""
    calls = 0
    def forward(self, images):
        out = super().forward(images)
        if torch.is_grad_enabled():
            type(self).calls += 1
            if type(self).calls > 22:
                out = out * float("nan")
        return out
'''


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     plugins_undone: None) -> None:
    (tmp_path / "nan_plugin.py").write_text(NAN_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    code, output = _fit([*TINY, "--epochs", "3", "--set", "plugins=[nan_plugin]", "--backbone", "nan_in_epoch_2",
                         "--class-augmentation", "none", "--out", str(run)])
    assert code != 0
    assert "training stopped in epoch 2, iteration 1: the embeddings became NaN or infinite" in output
    assert "last good checkpoint" in output and "Traceback" not in output
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def _spawn(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    # the same thread count as this process (tests/conftest.py), so that the floating-point sums agree
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(torch.get_num_threads()),
           **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "gcahng.cli.main", "fit", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(condition, process: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the training process did not get there in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    code, output = _fit([*TINY, "--epochs", "3", "--out", str(run)])
    assert code == 0, output
    return json.loads((run / "test_metrics.json").read_text())


def _resume_and_compare(run: Path, uninterrupted: dict) -> None:
    code, output = _fit(["--resume", str(run), "--no-progress"])
    assert code == 0, output
    assert json.loads((run / "test_metrics.json").read_text())["metrics"] == uninterrupted["metrics"]
    assert [r["epoch"] for r in _records(run)] == [1, 2, 3]
    assert not [p for p in (run / "checkpoints").iterdir() if is_temporary(p.name)]


def test_resume_after_kill_between_epochs_equals_the_uninterrupted_run(tmp_path: Path, uninterrupted: dict) -> None:
    run = tmp_path / "run"
    process = _spawn([*TINY, "--epochs", "3", "--out", str(run)])
    last = run / "checkpoints" / "last.pt"
    _wait_for(last.exists, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert torch.load(last, weights_only=True)["epoch"] in (1, 2)
    _resume_and_compare(run, uninterrupted)


def test_resume_after_kill_during_a_checkpoint_write_equals_the_uninterrupted_run(tmp_path: Path,
                                                                                 uninterrupted: dict) -> None:
    run = tmp_path / "run"
    process = _spawn([*TINY, "--epochs", "3", "--out", str(run)], {WRITE_DELAY_ENV: "1"})
    folder = run / "checkpoints"
    # the second write of last.pt: its temporary file is complete but not yet renamed
    _wait_for(lambda: (folder / "last.pt").exists() and any(is_temporary(p.name) for p in folder.iterdir()), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == 1  # the previous checkpoint, intact
    _resume_and_compare(run, uninterrupted)
