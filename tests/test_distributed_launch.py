"""``torchrun -m gcahng fit`` on gloo CPU processes: rank-0 outputs, the sharded evaluation
against one process, a NaN on one rank, a worker killed with SIGKILL under
``--max-restarts``, single-process checkpoints continued by torchrun, and two launchers
(two "nodes" on this machine) against one launcher of as many workers.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.config import TrainConfig, apply_overrides, config_from_dict
from gcahng.distributed.runtime import SINGLE, Runtime, rank_device, restart_warning, runtime_from_env, shard
from gcahng.errors import ConfigError
from gcahng.formats.checkpoint import WRITE_DELAY_ENV, load_training_checkpoint
from gcahng.training.build import build_training_parts

# 16 classes of 12 x 12 images, the first 8 for training: 8 iterations of 8 classes x 2 images per epoch
RUN = ["--backbone", "tiny_cnn", "--no-pretrained", "--device", "cpu", "--workers", "0", "--no-progress",
       "--embedding-dim", "16", "--image-size", "12", "--set", "resize_size=12", "--classes-per-batch", "8",
       "--per-class", "2", "--selection", "last", "--set", "val_fraction=null", "--set", "eval_every=1",
       "--set", "warmup_epochs=1", "--gcl-iterations", "1", "--heads", "2", "--epochs", "3"]


def test_without_torchrun_the_run_is_one_process_and_torchrun_env_is_read_and_checked() -> None:
    assert runtime_from_env({}) == SINGLE and not SINGLE.distributed and SINGLE.is_main
    shared = {"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_MAX_RESTARTS": "3"}
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in restart_warning(shared)
    assert restart_warning({**shared, "TORCHELASTIC_USE_AGENT_STORE": "False"}) is None
    assert restart_warning({**shared, "TORCHELASTIC_MAX_RESTARTS": "0"}) is None
    assert runtime_from_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Runtime(1, 4, 1, True)
    with pytest.raises(ConfigError, match="inconsistent: RANK=4, WORLD_SIZE=4"):
        runtime_from_env({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
    with pytest.raises(ConfigError, match="not integers"):
        runtime_from_env({"RANK": "x", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
    assert rank_device(Runtime(1, 2, 1, True), torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="LOCAL_RANK chooses each process's GPU"):
        rank_device(Runtime(1, 2, 1, True), torch.device("cuda:0"))
    # rank r embeds batches r, r + W, ...: together every item once
    shards = [shard(list(range(10)), Runtime(r, 3, r, True), 2) for r in range(3)]
    assert shards == [[0, 1, 6, 7], [2, 3, 8, 9], [4, 5]]


def test_classes_per_batch_must_divide_over_the_processes(tmp_path: Path) -> None:
    from gcahng.training.build import load_datasets, train_loader

    cfg = TrainConfig(dataset="folder", data_root=str(_images(tmp_path)), backbone="tiny_cnn", pretrained=False,
                      image_size=12, resize_size=12, classes_per_batch=8, per_class=2, selection="last",
                      val_fraction=None, device="cpu")
    train = load_datasets(cfg)["train"]
    assert len(train_loader(cfg, train, torch.device("cpu"), Runtime(1, 4, 1, True))) == 8
    with pytest.raises(ConfigError, match="classes_per_batch=8 is not divisible by the 3 processes"):
        train_loader(cfg, train, torch.device("cpu"), Runtime(0, 3, 0, True))
    # one class per process: fine when the graph spans the processes, not when each builds its own
    assert len(train_loader(cfg, train, torch.device("cpu"), Runtime(1, 8, 1, True))) == 8
    local = apply_overrides(cfg, {"graph_scope": "local"})
    with pytest.raises(ConfigError, match="leaves 1 class per process, and graph_scope 'local'.*choose at least 16"):
        train_loader(local, train, torch.device("cpu"), Runtime(1, 8, 1, True))
    assert len(train_loader(local, train, torch.device("cpu"), Runtime(1, 4, 1, True))) == 8


def _images(root: Path, classes: int = 16, per_class: int = 16) -> Path:
    folder = root / "images"
    if folder.exists():
        return folder
    rng = np.random.default_rng(0)
    for c in range(classes):
        base = rng.integers(0, 256, (3,))
        (folder / f"class_{c:02d}").mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(base + rng.normal(0, 40, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"class_{c:02d}" / f"{i}.png")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(launch: list[str], fit: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *launch, "-m", "gcahng", "fit", *fit],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def _metrics(run: Path) -> dict:
    return json.loads((run / "test_metrics.json").read_text())["metrics"]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """An uninterrupted 2-process run: (images, run folder, output)."""
    root = tmp_path_factory.mktemp("dist")
    images, run = _images(root), root / "run"
    code, output = _finish(_torchrun(["--standalone", "--nproc-per-node", "2"],
                                     ["folder", "--data-root", str(images), *RUN, "--out", str(run)]))
    assert code == 0, output[-3000:]
    return images, run, output


def test_two_processes_write_one_run_folder_whose_table_equals_a_one_process_evaluation(
    two_process_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    images, run, output = two_process_run
    assert "distributed: 2 processes, each 4 of the 8 classes of every batch; graph_scope global" in output
    assert output.count("epoch 1/3") == 1 and output.count("test metrics of") == 1  # rank 0 only
    assert [r["epoch"] for r in _records(run)] == [1, 2, 3]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert len(list((run / "tensorboard").iterdir())) == 1
    # the sharded evaluation of the last epoch, the final table and one process's `gcahng eval` agree exactly
    table = _metrics(run)
    assert {k: v for k, v in _records(run)[-1]["eval"].items() if k != "split"} == table
    result = CliRunner().invoke(cli, ["eval", str(run / "checkpoints" / "best.pt"), "folder", "--data-root",
                                      str(images), "--device", "cpu", "--out", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"] == table
    # rank 0's last.pt is a one-process checkpoint: no DDP "module." prefixes, every state loads strictly
    state = load_training_checkpoint(run / "checkpoints" / "last.pt")
    parts = build_training_parts(config_from_dict(state["config"]), 8, torch.device("cpu"))
    parts.model.load_state_dict(state["model"])
    parts.generator.load_state_dict(state["generator"])
    for name, optimizer in parts.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    parts.step.load_state_dict(state["step"])


def _worker_pids(launcher: int) -> dict[int, int]:
    """RANK -> PID of the worker processes a torchrun process started."""
    workers = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher:
            rank = [v.split(b"=", 1)[1] for v in environ if v.startswith(b"RANK=")]
            if rank:
                workers[int(rank[0])] = int(entry.name)
    return workers


def test_a_killed_worker_is_restarted_by_torchrun_and_the_run_ends_as_the_uninterrupted_one(
    two_process_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    images, reference, _ = two_process_run
    run = tmp_path / "run"
    process = _torchrun(["--standalone", "--nproc-per-node", "2", "--max-restarts", "3"],
                        ["folder", "--data-root", str(images), *RUN, "--out", str(run), "--resume", "auto"],
                        {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"})  # see restart_warning
    last = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not last.exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the run did not finish its first epoch in time"
        time.sleep(0.01)
    os.kill(_worker_pids(process.pid)[1], signal.SIGKILL)  # rank 1, in epoch 2
    code, output = _finish(process)
    assert code == 0, output[-3000:]
    assert "--resume auto: continuing the run in" in output and "resumed" in output
    assert _metrics(run) == _metrics(reference)
    assert [r["epoch"] for r in _records(run)] == [1, 2, 3]


def test_a_one_process_checkpoint_is_continued_by_two_processes(two_process_run: tuple[Path, Path, str],
                                                                tmp_path: Path) -> None:
    images, _, _ = two_process_run
    run = tmp_path / "run"
    args = ["fit", "folder", "--data-root", str(images), *RUN, "--out", str(run), "--resume", "auto"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", WRITE_DELAY_ENV: "1"}
    single = subprocess.Popen([sys.executable, "-m", "gcahng", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not last.exists():
        assert single.poll() is None, single.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    single.send_signal(signal.SIGKILL)
    single.wait()
    epoch = torch.load(last, weights_only=True)["epoch"]
    code, output = _finish(_torchrun(["--standalone", "--nproc-per-node", "2"], args[1:]))
    assert code == 0, output[-3000:]
    assert f"resumed {run} after epoch {epoch}" in output
    assert [r["epoch"] for r in _records(run)] == [1, 2, 3]


NAN_ON_RANK_1 = '''
import os
import torch
from gcahng.models import BACKBONES
from gcahng.models.tiny_cnn import TinyCNN

@BACKBONES.register("nan_on_rank_1")
class NanOnRank1(TinyCNN):
    """TinyCNN whose training forward passes on rank 1 turn NaN from the 3rd on."""
    calls = 0
    def forward(self, images):
        out = super().forward(images)
        if torch.is_grad_enabled() and os.environ.get("RANK") == "1":
            type(self).calls += 1
            if type(self).calls > 2:
                out = out * float("nan")
        return out
'''


def test_a_nan_on_one_rank_stops_every_rank_naming_it(two_process_run: tuple[Path, Path, str],
                                                       tmp_path: Path) -> None:
    images, _, _ = two_process_run
    (tmp_path / "nan_on_rank_1.py").write_text(NAN_ON_RANK_1)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    code, output = _finish(_torchrun(["--standalone", "--nproc-per-node", "2"],
                                     ["folder", "--data-root", str(images), *RUN, "--plugin", "nan_on_rank_1",
                                      "--backbone", "nan_on_rank_1", "--out", str(tmp_path / "run"),
                                      # local scope: the global batch norm of the head would carry rank 1's
                                      # NaN into rank 0's embeddings, and the message would name both
                                      "--set", "graph_scope=local"], env))
    assert code != 0
    message = "training stopped in epoch 1, iteration 3: the embeddings became NaN or infinite on rank 1;"
    assert output.count(message) == 2, output[-3000:]  # both ranks stop at the same iteration


def test_two_launchers_of_two_workers_equal_one_launcher_of_four(two_process_run: tuple[Path, Path, str],
                                                                  tmp_path: Path) -> None:
    images, _, _ = two_process_run
    fit = ["folder", "--data-root", str(images), *RUN, "--epochs", "2"]
    single = _torchrun(["--standalone", "--nproc-per-node", "4"], [*fit, "--out", str(tmp_path / "one")])
    code, output = _finish(single)
    assert code == 0, output[-3000:]
    port = _free_port()
    launch = ["--nnodes", "2", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
              "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-nodes"]
    nodes = [_torchrun(launch, [*fit, "--out", str(tmp_path / "two")]) for _ in range(2)]
    for node in nodes:
        code, output = _finish(node)
        assert code == 0, output[-3000:]
    assert _metrics(tmp_path / "two") == _metrics(tmp_path / "one")
    assert [r["loss"] for r in _records(tmp_path / "two")] == [r["loss"] for r in _records(tmp_path / "one")]
