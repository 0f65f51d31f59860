"""Atomic checkpoint writes, checkpoint reading, and the per-epoch schedules and warm-up."""
from __future__ import annotations

import errno
import math
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from gcahng.config import TrainConfig
from gcahng.errors import CheckpointError
from gcahng.formats.atomic import remove_stale_temporaries
from gcahng.formats.checkpoint import atomic_save, load_training_checkpoint, read_checkpoint
from gcahng.training.build import build_training_parts
from gcahng.training.evaluate import load_for_evaluation
from gcahng.training.schedule import apply_warmup

TINY = {"dataset": "digits", "backbone": "tiny_cnn", "embedding_dim": 16, "image_size": 16, "pretrained": False,
        "gcl_iterations": 1, "heads": 2, "epochs": 6, "decay_epochs": 2, "warmup_epochs": 2, "selection": "last",
        "val_fraction": None, "base_lr": 0.01, "gnn_lr": 0.02, "device": "cpu"}


def test_atomic_save_replaces_the_file_and_a_failed_write_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "ck" / "last.pt"
    atomic_save({"a": torch.ones(3)}, path)
    atomic_save({"a": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.zeros(3))
    # not serialisable: fails mid-write (AttributeError "Can't pickle local object"; PicklingError on Python 3.14+)
    with pytest.raises((AttributeError, pickle.PicklingError)):
        atomic_save({"a": lambda: None}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.zeros(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".last.pt.0123abcd.tmp").write_bytes(b"torn")
    (tmp_path / "last.pt").write_bytes(b"kept")
    (tmp_path / ".notes.tmp").write_bytes(b"a file of the user's: not a temporary's name")
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp", "last.pt"]


def test_unreadable_and_foreign_checkpoints_are_named(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt is not a PyTorch checkpoint file"):
        load_training_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_for_evaluation(tmp_path / "missing.pt")
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": {}, "model": {"w": torch.ones(1)}},
               tmp_path / "inf.pt")
    with pytest.raises(CheckpointError, match="cannot resume a run: it lacks generator"):
        load_training_checkpoint(tmp_path / "inf.pt")
    torch.save({"weights": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt is not a state dict"):
        load_for_evaluation(tmp_path / "list.pt")


def test_hostile_checkpoint_files_get_one_clear_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("epoch: 3\n")
    ours = {"format": "gcahng-checkpoint", "version": 1, "model_spec": {"backbone": "tiny_cnn"}}
    torch.save({**ours, "model": {"head.weight": [1.0, 2.0]}}, tmp_path / "list_weight.pt")
    torch.save({**ours, "model": {}}, tmp_path / "no_model.pt")
    torch.save({**ours, "version": 99, "model": {"w": torch.ones(1)}}, tmp_path / "future.pt")
    torch.save(b"\x00" * 10, tmp_path / "truncated.pt")
    (tmp_path / "truncated.pt").write_bytes((tmp_path / "truncated.pt").read_bytes()[:40])
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    cases = {
        "empty.pt": r"empty\.pt is empty \(0 bytes\)",
        "text.pt": r"text\.pt is not a PyTorch checkpoint file",
        "list_weight.pt": r"list_weight\.pt: weight 'model\.head\.weight' is a list, not a tensor",
        "no_model.pt": r"no_model\.pt lacks the embedding model",
        "future.pt": r"future\.pt has checkpoint version 99",
        "truncated.pt": r"cannot read checkpoint .*truncated\.pt: \w+",
        "fifo.pt": r"fifo\.pt: a FIFO, not a regular file",
    }
    for name, message in cases.items():
        for reader in (read_checkpoint, load_training_checkpoint, load_for_evaluation):
            with pytest.raises(CheckpointError, match=message):
                reader(tmp_path / name)


def test_a_full_disk_names_the_file_keeps_the_previous_checkpoint_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"a": torch.zeros(3)}, path)

    def full(payload, handle):
        handle.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=f"no space left on device writing {re.escape(str(path))}"):
        atomic_save({"a": torch.ones(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_schedules_halve_the_embedding_lr_and_anneal_the_gcl_lr_per_epoch() -> None:
    cfg = TrainConfig(**TINY)
    parts = build_training_parts(cfg, num_classes=5, device=torch.device("cpu"))
    embedding, gcl = [], []
    for _ in range(cfg.epochs):
        embedding.append(parts.optimizers.embedding.param_groups[0]["lr"])
        gcl.append(parts.optimizers.gcl.param_groups[0]["lr"])
        parts.optimizers.embedding.step()
        parts.optimizers.gcl.step()
        parts.schedulers.step()
    assert embedding == pytest.approx([0.01 * 0.5 ** (e // 2) for e in range(6)])
    assert gcl == pytest.approx([0.01 * (1 + math.cos(math.pi * e / 6)) for e in range(6)])
    assert parts.optimizers.classifier.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_warmup_freezes_only_the_backbone_for_its_epochs() -> None:
    parts = build_training_parts(TrainConfig(**TINY), num_classes=5, device=torch.device("cpu"))
    model = parts.model
    for epoch, frozen in ((0, True), (1, True), (2, False)):
        assert apply_warmup(model, epoch, warmup_epochs=2) is frozen
        assert all(p.requires_grad is not frozen for p in model.backbone.parameters())
        assert all(p.requires_grad for p in model.fc.parameters())
