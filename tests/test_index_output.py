"""`gcahng index --out DIR`: one writer per folder, never a file of the user's replaced or deleted,
`--force` for an index only, unique temporaries, and no non-finite vector ever written."""
import hashlib
import json
import os
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
from gcahng.formats.atomic import is_temporary
from gcahng.formats.index_folder import FAISS_FILE, GALLERY_FILE, META_FILE
from gcahng.locking import LOCK_FILE
from gcahng.models.embedding import create_embedding_model
from gcahng.retrieval import Index


def _checkpoint(path: Path, overflow: bool = False) -> Path:
    """A tiny model; ``overflow``: finite weights whose embeddings overflow float32 (infinite or NaN)."""
    torch.manual_seed(0)
    model = create_embedding_model("tiny_cnn", 8, pretrained=False, image_size=32)
    state = model.state_dict()
    if overflow:
        state["fc.1.weight"].fill_(3e38)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(), "model": state},
               path)
    return path


def _gallery(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(count)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _index(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["index", *map(str, args), "--workers", "0"])
    return result.exit_code, result.output


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture()
def world(tmp_path: Path) -> tuple[Path, Path]:
    return _checkpoint(tmp_path / "model.pt"), _gallery(tmp_path / "gallery", 4)


def test_a_folder_that_is_not_an_index_is_refused_and_left_untouched(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    out = tmp_path / "mine"
    out.mkdir()
    (out / "skipped.txt").write_text("my notes\n")
    (out / "index.json").write_text('{"mine": true}\n')
    before = _hashes(out)
    for force in ([], ["--force"]):
        code, output = _index(ckpt, "--images", gallery, "--out", out, *force)
        assert code != 0 and f"Error: --out {out} exists and is not a gcahng index (it holds " in output, output
        assert _hashes(out) == before  # not even a lock file was added
    code, output = _index(ckpt, "--images", gallery, "--out", tmp_path / "model.pt")
    assert code != 0 and "Error: " in output and str(tmp_path / "model.pt") in output


def test_an_existing_index_is_replaced_only_with_force(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    out = tmp_path / "index"
    assert _index(ckpt, "--images", gallery, "--out", out)[0] == 0
    first = _hashes(out)
    code, output = _index(ckpt, "--images", _gallery(tmp_path / "bigger", 6), "--out", out)
    assert code != 0 and f"Error: --out {out} already holds an index; pass --force to replace it" in output
    assert _hashes(out) == first
    code, output = _index(ckpt, "--images", tmp_path / "bigger", "--out", out, "--force")
    assert code == 0, output
    assert len(Index.load(out)) == 6 and json.loads((out / META_FILE).read_text())["num_items"] == 6


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (no ``except Exception`` catches it)."""


def test_a_rebuild_killed_halfway_is_refused_then_replaced_with_force(tmp_path: Path, world,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import gcahng.formats.index_folder as index_folder

    ckpt, gallery = world
    out = tmp_path / "index"
    assert _index(ckpt, "--images", gallery, "--out", out)[0] == 0
    real = index_folder.write_atomically

    def killed_after_the_gallery(target, write):
        real(target, write)
        if Path(target).name == GALLERY_FILE:
            raise _Killed

    monkeypatch.setattr(index_folder, "write_atomically", killed_after_the_gallery)
    with pytest.raises(_Killed):
        CliRunner().invoke(cli, ["index", str(ckpt), "--images", str(_gallery(tmp_path / "other", 4)), "--out",
                                 str(out), "--workers", "0", "--force"], catch_exceptions=False)
    monkeypatch.setattr(index_folder, "write_atomically", real)
    # new vectors beside the old gallery: refused by every reader, and by a rerun without --force
    result = CliRunner().invoke(cli, ["retrieve", "--query", str(gallery / "0.png"), "--index", str(out)])
    assert result.exit_code != 0 and f"{out} holds an incomplete index (no index.json: its build was " \
                                      "interrupted); rebuild it" in result.output, result.output
    code, output = _index(ckpt, "--images", tmp_path / "other", "--out", out)
    assert code != 0 and f"--out {out} holds an incomplete index (gallery.json, index.faiss, no index.json" in output
    code, output = _index(ckpt, "--images", tmp_path / "other", "--out", out, "--force")
    assert code == 0, output
    assert Index.load(out).paths[0].startswith(str(tmp_path / "other"))


def test_files_of_another_index_are_refused(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    first, second = tmp_path / "first", tmp_path / "second"
    assert _index(ckpt, "--images", gallery, "--out", first)[0] == 0
    other = _gallery(tmp_path / "other", 4)
    (other / "0.png").rename(other / "last.png")  # the same count and sizes: other names, another order
    assert _index(ckpt, "--images", other, "--out", second)[0] == 0
    gallery_json = json.loads((first / GALLERY_FILE).read_text())
    reordered = json.dumps({**gallery_json, "items": gallery_json["items"][::-1]}).encode()
    for name, tampered in ((FAISS_FILE, (second / FAISS_FILE).read_bytes()), (GALLERY_FILE, reordered)):
        kept = (first / name).read_bytes()
        (first / name).write_bytes(tampered)  # each file valid, and the same count: only the pairing is wrong
        with pytest.raises(Exception, match=f"corrupt index file {first / name}: not the file {META_FILE} was "
                                            "written with"):
            Index.load(first)
        (first / name).write_bytes(kept)
    assert len(Index.load(first)) == 4


def test_a_name_with_a_line_break_is_skipped_and_listed(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    (gallery / "0.png").rename(gallery / "a\nb.png")
    out = tmp_path / "index"
    code, output = _index(ckpt, "--images", gallery, "--out", out)
    assert code == 0, output
    assert len(Index.load(out)) == 3
    listed = (out / "skipped.txt").read_text().splitlines()
    assert listed == [f"{gallery}/a\\nb.png\tits name holds a line break or tab (a gallery lists one path per line)"]


def test_force_does_not_replace_an_index_beside_other_files(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    out = tmp_path / "index"
    assert _index(ckpt, "--images", gallery, "--out", out)[0] == 0
    (out / "README.txt").write_text("my description of this index\n")
    before = _hashes(out)
    code, output = _index(ckpt, "--images", gallery, "--out", out, "--force")
    assert code != 0 and "holds an index and files that are not part of one (README.txt); refusing" in output
    assert _hashes(out) == before


def test_an_empty_folder_is_used_and_a_failed_run_leaves_a_new_folder_absent(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    (tmp_path / "empty").mkdir()
    assert _index(ckpt, "--images", gallery, "--out", tmp_path / "empty")[0] == 0
    assert {FAISS_FILE, META_FILE, GALLERY_FILE, LOCK_FILE} <= set(os.listdir(tmp_path / "empty"))
    overflowing = _checkpoint(tmp_path / "overflow.pt", overflow=True)
    code, output = _index(overflowing, "--images", gallery, "--out", tmp_path / "new")
    assert code != 0 and "are not finite (NaN or infinite), e.g. of " in output and str(gallery / "0.png") in output
    assert "Nothing was indexed" in output and not (tmp_path / "new").exists()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    out = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom gcahng.locking import folder_lock\n"
                               f"with folder_lock({str(out)!r}):\n    print('locked', flush=True)\n"
                               "    time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, output = _index(ckpt, "--images", gallery, "--out", out)
        assert code != 0 and f"Error: {out} is in use by process {holder.pid}" in output
        assert not (out / META_FILE).exists()
    finally:
        holder.kill()
        holder.wait()


def test_temporary_files_have_unique_names_and_leftovers_count_as_the_index(tmp_path: Path, world,
                                                                             monkeypatch) -> None:
    ckpt, gallery = world
    out = tmp_path / "index"
    assert _index(ckpt, "--images", gallery, "--out", out)[0] == 0
    leftover = out / f".{FAISS_FILE}.0badc0de.tmp"  # what a writer killed mid-write leaves
    leftover.write_bytes(b"partial")
    contents = Index.load(out)
    renamed: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(os.path.basename(src)),
                                                         real_replace(src, dst))[1])
    for _ in range(2):
        contents.save(tmp_path / "again")
    assert len(renamed) == 6 and len(set(renamed)) == 6
    assert all(name.startswith((f".{FAISS_FILE}.", f".{GALLERY_FILE}.", f".{META_FILE}."))
               and is_temporary(name) for name in renamed)
    monkeypatch.setattr(os, "replace", real_replace)
    code, output = _index(ckpt, "--images", gallery, "--out", out, "--force")
    assert code == 0, output
    assert not leftover.exists()


def _run_index(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "gcahng", "index", *args, "--workers", "0"], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_a_fifo_and_a_link_out_of_the_gallery_are_skipped_and_listed_never_opened(tmp_path: Path, world) -> None:
    ckpt, gallery = world
    os.mkfifo(gallery / "pipe.png")
    (tmp_path / "elsewhere.png").write_bytes((gallery / "0.png").read_bytes())
    os.symlink(tmp_path / "elsewhere.png", gallery / "link.png")
    out = tmp_path / "index"
    started = time.monotonic()
    result = _run_index([str(ckpt), "--images", str(gallery), "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 240
    assert "skipped 2 unreadable image(s)" in result.stderr
    assert f"{gallery / 'pipe.png'}: a FIFO, not a regular file" in result.stderr
    assert f"links outside the gallery folder {gallery}" in result.stderr
    listed = (out / "skipped.txt").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in listed) == [str(gallery / "link.png"), str(gallery / "pipe.png")]
    assert len(Index.load(out)) == 4 and json.loads((out / META_FILE).read_text())["source"]["skipped"] == 2

