"""A full disk while writing a checkpoint or an index: ``Error: no space left on device writing
PATH``, the previous file intact, no temporary file left behind.

On a real full file system: a 40 MiB tmpfs filled to the last byte (needs root, as CI runs; under
``CI=true`` a missing mount is a failure, never a skip). Without root the same paths run against
a patched write that raises ``ENOSPC``."""
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.errors import CheckpointError
from gcahng.formats.checkpoint import atomic_save
from gcahng.formats.index_folder import META_FILE
from gcahng.models.embedding import create_embedding_model
from gcahng.retrieval import Index

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 40 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    problem = None
    if os.geteuid() != 0:
        problem = "mounting a tmpfs needs root"
    else:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True,
                              text=True)
        problem = None if done.returncode == 0 else f"mount -t tmpfs failed: {done.stderr.strip()}"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem}; CI must run the real full-disk test")
        pytest.skip(f"{problem} (the patched-ENOSPC tests cover this machine)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(folder: Path) -> Path:
    """Write one file into ``folder`` until its file system has no byte left."""
    filler = folder / "filler"
    block = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(block)
            except OSError as err:
                assert err.errno == errno.ENOSPC
                break
        for size in (4096, 512, 1):  # the last pages
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass
    return filler


def _checkpoint(path: Path, dim: int = 8) -> Path:
    torch.manual_seed(0)
    model = create_embedding_model("tiny_cnn", dim, pretrained=False, image_size=32)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, path)
    return path


def _gallery(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_a_checkpoint_write_on_a_full_tmpfs(tmpfs: Path) -> None:
    path = tmpfs / "run" / "last.pt"
    atomic_save({"weights": torch.zeros(1000)}, path)
    before = path.read_bytes()
    _fill(tmpfs)
    with pytest.raises(CheckpointError) as caught:
        atomic_save({"weights": torch.ones(200_000)}, path)
    assert str(caught.value) == f"no space left on device writing {path}"
    assert path.read_bytes() == before and torch.equal(torch.load(path, weights_only=True)["weights"],
                                                       torch.zeros(1000))
    assert os.listdir(path.parent) == ["last.pt"]  # the temporary file was removed


def test_an_index_write_on_a_full_tmpfs(tmpfs: Path, tmp_path: Path) -> None:
    ckpt, gallery = _checkpoint(tmp_path / "model.pt", dim=512), _gallery(tmp_path / "gallery")
    out = tmpfs / "index"
    args = ["index", str(ckpt), "--images", str(gallery), "--out", str(out), "--workers", "0"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    _fill(tmpfs)
    result = CliRunner().invoke(cli, [*args, "--force"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # an Error: line, no traceback
    assert f"Error: no space left on device writing {out / 'index.faiss'}" in result.output, result.output
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # the old index, no temporary
    assert len(Index.load(out)) == 5
    fresh = tmpfs / "fresh"
    result = CliRunner().invoke(cli, ["index", str(ckpt), "--images", str(gallery), "--out", str(fresh),
                                      "--workers", "0"])
    assert f"Error: no space left on device writing {fresh / 'index.faiss'}" in result.output, result.output
    assert not fresh.exists()  # the folder it created is removed again


def test_a_metrics_append_on_a_full_tmpfs(tmpfs: Path) -> None:
    from gcahng.errors import DiskFullError
    from gcahng.formats.metrics_log import append_record, read_records

    path = tmpfs / "metrics.jsonl"
    append_record(path, {"epoch": 1, "loss": {"total": 1.0}})
    _fill(tmpfs)
    with pytest.raises(DiskFullError, match=f"^no space left on device writing {path}$"):
        append_record(path, {"epoch": 2, "loss": {"total": 0.5}, "padding": "x" * 10_000})
    assert [r["epoch"] for r in read_records(path, drop_torn_tail=True)] == [1]


def test_a_run_on_a_full_tmpfs_names_the_file_it_could_not_write(tmpfs: Path) -> None:
    _fill(tmpfs)
    run = tmpfs / "run"
    result = CliRunner().invoke(cli, ["fit", "--device", "cpu", "--workers", "0", "--no-progress", "--epochs", "1",
                                      "--out", str(run)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"Error: no space left on device writing {run / 'config.yaml'}" in result.output, result.output
    assert not [name for name in os.listdir(run) if name.endswith(".tmp")]


def test_an_index_write_on_a_patched_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, gallery = _checkpoint(tmp_path / "model.pt"), _gallery(tmp_path / "gallery")
    out = tmp_path / "index"
    args = ["index", str(ckpt), "--images", str(gallery), "--out", str(out), "--workers", "0"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    real_write = faiss.write_index

    def full(index, name):
        real_write(index, name)  # bytes on the disk, then the failure, as a real full disk does
        raise RuntimeError(f"Error in faiss::FileIOWriter: write error in {name}: No space left on device")

    monkeypatch.setattr(faiss, "write_index", full)
    result = CliRunner().invoke(cli, [*args, "--force"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"Error: no space left on device writing {out / 'index.faiss'}" in result.output, result.output
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert json.loads((out / META_FILE).read_text())["num_items"] == 5
