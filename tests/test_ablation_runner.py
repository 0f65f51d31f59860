"""``gcahng ablate``: the resumable grid (with a fake trainer that is really interrupted) and one
real end-to-end run of two tiny cells."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from click.testing import CliRunner

from gcahng.ablation import runner as runner_module
from gcahng.cli.main import cli
from gcahng.config import TrainConfig, save_config
from gcahng.evaluation import RetrievalMetrics


class FakeTrainer:
    """Writes a run folder like the real trainer; MAP@R = alpha / 10 + seed / 100.

    ``calls`` records ``(run folder, resume)``; the run named in ``interrupt_at`` raises
    KeyboardInterrupt after writing its config (a run stopped mid-way)."""

    calls: ClassVar[list[tuple[str, bool]]] = []
    interrupt_at: ClassVar[str | None] = None

    def __init__(self, cfg: TrainConfig, run_dir: Path, *, resume: bool, progress: bool, log) -> None:
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume

    def fit(self) -> RetrievalMetrics:
        name = f"{self.run_dir.parent.name}/{self.run_dir.name}"
        type(self).calls.append((name, self.resume))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / "config.yaml")
        if name == type(self).interrupt_at:
            raise KeyboardInterrupt
        score = self.cfg.alpha / 10 + self.cfg.seed / 100
        metrics = RetrievalMetrics({1: score + 0.1}, score, score, None, 10, 0)
        (self.run_dir / "test_metrics.json").write_text(json.dumps({"metrics": metrics.to_dict()}))
        return metrics


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeTrainer]:
    monkeypatch.setattr(runner_module, "Trainer", FakeTrainer)
    monkeypatch.setattr(FakeTrainer, "calls", [])
    monkeypatch.setattr(FakeTrainer, "interrupt_at", None)
    return FakeTrainer


def _ablate(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ablate", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_an_interrupted_grid_resumes_without_repeating_finished_runs(fake: type[FakeTrainer], tmp_path: Path) -> None:
    out = tmp_path / "abl"
    args = ["--grid", "alpha=4,5", "--seeds", "2", "--out", str(out), "--no-progress"]
    fake.interrupt_at = "alpha=4.0/seed1"
    code, output = _ablate(args)
    assert code == 130 and "interrupted; run the same command again to continue" in output
    assert fake.calls == [("alpha=4.0/seed0", False), ("alpha=4.0/seed1", False)]
    assert not (out / "results.md").exists()

    fake.calls, fake.interrupt_at = [], None
    code, output = _ablate(args)
    assert code == 0, output
    assert "[1/4] alpha=4.0, seed 0: finished: skipped" in output
    assert "[2/4] alpha=4.0, seed 1: resuming the interrupted run" in output
    assert fake.calls == [("alpha=4.0/seed1", True), ("alpha=5.0/seed0", False), ("alpha=5.0/seed1", False)]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["alpha"], float(r["map@r_mean"]), r["best"]) for r in rows] == [
        ("4.0", pytest.approx(0.405), "false"), ("5.0", pytest.approx(0.505), "true")]
    assert {p.name for p in out.iterdir()} == {"runs", "results.md", "results.csv", "results.json", "results.png",
                                             ".gcahng.lock"}  # the folder lock (gcahng.locking)

    fake.calls = []
    code, output = _ablate([*args[:-3], "--seeds", "3", "--out", str(out)])  # one more seed: only it trains
    assert code == 0, output
    assert fake.calls == [("alpha=4.0/seed2", False), ("alpha=5.0/seed2", False)]
    assert "| **5.0** | **61.0 ± 1.0** | **51.0 ± 1.0** | **3** |" in (out / "results.md").read_text()


def test_a_folder_of_another_config_fails_before_any_training(fake: type[FakeTrainer], tmp_path: Path) -> None:
    out = tmp_path / "abl"
    assert _ablate(["--grid", "alpha=4,5", "--seeds", "1", "--out", str(out)])[0] == 0
    fake.calls = []
    code, output = _ablate(["--grid", "alpha=5,4", "--seeds", "1", "--set", "beta=3", "--out", str(out)])
    assert code != 0 and "holds a run of another config (beta differ" in output
    assert fake.calls == []


@pytest.mark.parametrize("args, message", [
    (["--grid", "alpha=4", "--set", "alpha=5"], "alpha given both in --grid and as a fixed value"),
    (["--grid", "epochs=1,2", "--epochs", "3"], "epochs given both in --grid"),
    (["--set", "seed=3"], "--set seed: the seeds come from --seeds and --seed-offset"),
    (["--grid", "generator=gca,mixup"],
     "--grid generator=mixup: config key 'generator' must be 'gca' | 'hdml' | 'none', got 'mixup'"),
    (["--grid", "nodes=1"], "unknown config key 'nodes'; valid keys: dataset, data_root"),
])
def test_bad_grids_fail_before_any_training(fake: type[FakeTrainer], tmp_path: Path, args: list[str],
                                            message: str) -> None:
    code, output = _ablate([*args, "--seeds", "1", "--out", str(tmp_path / "abl")])
    assert code != 0 and message in output and "Traceback" not in output
    assert fake.calls == [] and not (tmp_path / "abl").exists()


def test_real_training_of_two_tiny_cells_end_to_end(tmp_path: Path) -> None:
    out, report = tmp_path / "abl", tmp_path / "docs" / "report.md"
    args = ["--grid", "generator=none,hdml", "--seeds", "1", "--seed-offset", "5", "--epochs", "1",
            "--set", "device=cpu", "--set", "workers=0", "--set", "embedding_dim=16", "--set", "image_size=16",
            "--set", "resize_size=16", "--set", "per_class=8", "--out", str(out), "--report-md", str(report)]
    code, output = _ablate([*args, "--no-progress"])
    assert code == 0, output
    text = (out / "results.md").read_text()
    assert report.read_text() == text and text in output
    assert text.splitlines()[3] == "gcahng ablate " + " ".join(args)
    data = json.loads((out / "results.json").read_text())
    assert [c["values"] for c in data["cells"]] == [{"generator": "none"}, {"generator": "hdml"}]
    for cell in data["cells"]:
        run_dir = out / cell["runs"][0]["folder"]
        assert cell["runs"][0]["seed"] == 5 and run_dir.name == "seed5"
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["generator"] == cell["values"]["generator"] and saved["seed"] == 5 and saved["epochs"] == 1
        assert cell["runs"][0]["metrics"] == json.loads((run_dir / "test_metrics.json").read_text())["metrics"]
        assert cell["map@r"]["std"] is None and 0 < cell["map@r"]["mean"] <= cell["recall@1"]["mean"] <= 1
        row = f"| {cell['values']['generator']} | {100 * cell['recall@1']['mean']:.1f} ± – | "
        assert row in text.replace("**", "")


def test_dry_run_lists_what_would_happen_and_trains_nothing(fake: type[FakeTrainer], tmp_path: Path) -> None:
    out = tmp_path / "abl"
    fake.interrupt_at = "alpha=4.0/seed1"
    _ablate(["--grid", "alpha=4,5", "--seeds", "2", "--out", str(out)])
    fake.calls = []
    code, output = _ablate(["--grid", "alpha=4,5", "--seeds", "2", "--out", str(out), "--dry-run"])
    assert code == 0, output
    assert fake.calls == [] and not (out / "results.md").exists()
    lines = output.splitlines()[-5:]
    assert lines[0] == "2 cell(s) x 2 seed(s); nothing is trained (--dry-run):"
    assert [line.split(": ", 1)[1].split(" (")[0] for line in lines[1:]] == [
        "finished: will be skipped", "will resume", "will train", "will train"]
    assert lines[2].startswith("[2/4] alpha=4.0, seed 1: will resume (") and lines[2].endswith("alpha=4.0/seed1)")
