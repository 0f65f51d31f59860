"""metrics.jsonl: one reader (torn tail dropped on resume, garbage in the middle refused) and
resume refusing a bad last.pt before it touches the run's files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gcahng.errors import CheckpointError, DataError
from gcahng.formats.checkpoint import load_training_checkpoint
from gcahng.formats.metrics_log import append_record, read_records, truncate


def _log(path: Path, epochs: int) -> None:
    for epoch in range(1, epochs + 1):
        append_record(path, {"epoch": epoch, "loss": {"J_m": 0.5}})


def test_truncate_drops_a_torn_tail_and_later_epochs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    _log(path, 3)
    with open(path, "a") as handle:
        handle.write('{"epoch": 4, "lo')  # a crash mid-write
    with pytest.raises(DataError, match=r"metrics\.jsonl, line 4: not JSON"):
        read_records(path)
    truncate(path, 2)
    assert [r["epoch"] for r in read_records(path)] == [1, 2]
    assert "torn last line" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_garbage_in_the_middle_or_a_record_without_epoch_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(DataError, match=r"metrics\.jsonl, line 2: not JSON"):
        truncate(path, 1)
    assert path.read_text() == '{"epoch": 1}\nnot json\n{"epoch": 2}\n'
    path.write_text('{"epoch": 1}\n{"loss": {}}\n')
    with pytest.raises(DataError, match=r"line 2: expected an object with an integer 'epoch'"):
        truncate(path, 1)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epoch", -5, "'epoch' must be a non-negative integer"),
    ("epoch", "3", "'epoch' must be a non-negative integer"),
    ("best", [1], "'best' must be a mapping"),
])
def test_training_checkpoint_fields_are_validated(tmp_path: Path, field: str, value: object, message: str) -> None:
    payload = {"format": "gcahng-checkpoint", "version": 1, "model_spec": {},
               "model": {"w": torch.ones(1)}, "generator": {},
               "metric_loss": {}, "optimizers": {}, "schedulers": {}, "step": {}, "epoch": 1,
               "best": {"score": None, "epoch": None}, "config": {}, field: value}
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=message):
        load_training_checkpoint(tmp_path / "last.pt")


def test_resume_refuses_a_bad_last_pt_before_touching_the_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gcahng.cli.main import cli

    run = tmp_path / "run"
    tiny = ["--device", "cpu", "--workers", "0", "--no-progress", "--embedding-dim", "8", "--image-size", "16",
            "--set", "resize_size=16", "--epochs", "1", "--out", str(run)]
    result = CliRunner().invoke(cli, ["fit", *tiny])
    assert result.exit_code == 0, result.output
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    torch.save({**state, "epoch": -5}, last)
    before = (run / "metrics.jsonl").read_text()
    result = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--no-progress"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"Error: {last}: 'epoch' must be a non-negative integer" in result.output
    assert (run / "metrics.jsonl").read_text() == before
