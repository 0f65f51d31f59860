"""Every case of issue 12 (items 1-7) and the earlier hostile images, as :class:`Case` records.

Each ``setup`` receives the case's empty ``inputs`` folder and the session's :class:`World`, builds
the hostile input there and returns the :class:`Command`: the arguments of ``python -m gcahng``,
the texts the output must hold (the file named, the field), and the paths it may write.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import torch
from data_fixtures import bomb_jpeg_bytes, bomb_png_bytes, jpeg_bytes, make_cub, make_folder, make_inshop, make_sop
from harness import Case, Command, cli_environment, file_hashes
from PIL import Image
from release_keys import release_state_dict
from world import World, checkpoint_payload, png_bytes, read_json, write_json

from gcahng.locking import LOCK_FILE

CASES: list[Case] = []


def case(id: str, item: str, given: str, required: str, exit: str) -> Callable:
    def register(setup: Callable[[Path, World], Command]) -> Callable:
        CASES.append(Case(id, item, given, required, exit, setup))
        return setup

    return register


# ------------------------------------------------------------------------------------------- helpers
def _checkpoint(inputs: Path, change: Callable[[dict], object], name: str = "ckpt.pt") -> Path:
    payload = checkpoint_payload()
    change(payload)
    torch.save(payload, inputs / name)
    return inputs / name


def _eval(ckpt: Path, inputs: Path, *extra: str, expect=(), names_checkpoint: bool = True) -> Command:
    """``eval CKPT ... --out inputs/eval.json``; the output must name CKPT unless told otherwise."""
    out = inputs / "eval.json"
    return Command(["eval", ckpt, *extra, "--workers", "0", "--out", out],
                   expect=[str(ckpt), *expect] if names_checkpoint else list(expect), writes=[out])


def _index_copy(inputs: Path, world: World, *, digits: bool = False) -> Path:
    return world.copy("digits_index" if digits else "index", inputs / "index")


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = read_json(path)
    change(data)
    write_json(path, data)


def _query(inputs: Path, name: str = "query.png") -> Path:
    (inputs / name).write_bytes(png_bytes((0, 255, 0), seed=99))
    return inputs / name


def _retrieve(index: Path, query: Path, *extra, expect=(), **kwargs) -> Command:
    return Command(["retrieve", "--index", index, "--query", query, "-k", "3", *extra], expect=list(expect), **kwargs)


def _own_gallery(inputs: Path, world: World) -> tuple[Path, Path]:
    """A copy of the gallery and of its index, the index pointing at the copy."""
    gallery = world.copy("gallery", inputs / "gallery")
    index = _index_copy(inputs, world)
    _edit_json(index / "index.json", lambda m: m["source"].update(images=str(gallery)))
    return gallery, index


def _run_copy(inputs: Path, world: World, change: Callable[[dict], object] | None = None) -> Path:
    run = world.copy("run", inputs / "run")
    if change is not None:
        last = run / "checkpoints" / "last.pt"
        payload = torch.load(last, weights_only=True)
        change(payload)
        torch.save(payload, last)
    return run


def _fit(*args, expect=(), **kwargs) -> Command:
    return Command(["fit", *args, "--no-progress"], expect=list(expect), **kwargs)


FIT_OUT = "new_run"  # every fit with a bad input is given this --out, which must not appear


# ------------------------------------------------------------------------------ item 1: checkpoints
@case("ckpt-config-empty", "1", "checkpoint whose config is {}", "Error naming the file and config", "error")
def _(inputs, world):
    ckpt = _checkpoint(inputs, lambda p: p.update(config={}))
    return _eval(ckpt, inputs, expect=["config"])


@case("ckpt-config-missing-keys", "1", "checkpoint whose config lacks 'dataset'", "Error naming the file and the key",
      "error")
def _(inputs, world):
    ckpt = _checkpoint(inputs, lambda p: p["config"].pop("dataset"))
    return _eval(ckpt, inputs, expect=["dataset"])


@case("ckpt-weight-not-tensor", "1", "checkpoint with a weight that is a string", "Error naming file and weight",
      "error")
def _(inputs, world):
    def change(payload):
        name = next(iter(payload["model"]))
        payload["model"][name] = "not a tensor"

    ckpt = _checkpoint(inputs, change)
    return _eval(ckpt, inputs, "digits", expect=["not a tensor"])


@case("ckpt-embedding-dim-1e13", "1", "model_spec embedding_dim = 10^13", "Error naming file and embedding_dim, "
      "refused before allocating", "error")
def _(inputs, world):
    ckpt = _checkpoint(inputs, lambda p: p["model_spec"].update(embedding_dim=10**13))
    return _eval(ckpt, inputs, "digits", expect=["embedding_dim"])


@case("ckpt-zero-byte", "1", "a 0-byte checkpoint", "Error naming the file (empty)", "error")
def _(inputs, world):
    (inputs / "ckpt.pt").write_bytes(b"")
    return _eval(inputs / "ckpt.pt", inputs, "digits", expect=["empty"])


@case("ckpt-text-file", "1", "a text file as checkpoint", "Error naming the file", "error")
def _(inputs, world):
    (inputs / "ckpt.pt").write_text("epoch: 3\nthis is not a checkpoint\n")
    return _eval(inputs / "ckpt.pt", inputs, "digits", expect=["not a PyTorch checkpoint"])


@case("ckpt-released-without-head", "1", "released-layout GoogLeNet metric model without feature_extractor.fc",
      "Error naming the file", "error")
def _(inputs, world):
    state = {k: v for k, v in release_state_dict("googlenet_K2.tsv").items()
             if k.startswith("feature_extractor.") and not k.startswith("feature_extractor.fc.")}
    torch.save(state, inputs / "release.pth")
    return _eval(inputs / "release.pth", inputs, "digits")


# ---------------------------------------------------------------------- item 1: last.pt for --resume
def _resume_refused(field: str, value: object):
    def setup(inputs, world):
        run = _run_copy(inputs, world, lambda p: p.update({field: value}) if value is not None else p.pop(field))
        # the lock file is the one write allowed before the checkpoint is validated
        return _fit("--resume", run, expect=[str(run / "checkpoints" / "last.pt"), field],
                    writes=[run / LOCK_FILE])

    return setup


for _id, _field, _value, _what in [("epoch-a-string", "epoch", "3", "epoch '3' (a string)"),
                                   ("epoch-negative", "epoch", -5, "epoch -5"),
                                   ("best-missing", "best", None, "no 'best'"),
                                   ("best-not-mapping", "best", [0.5, 1], "best a list")]:
    case(f"resume-{_id}", "1", f"last.pt with {_what}",
         "Error naming last.pt and the field; run folder (metrics.jsonl) untouched", "error")(
        _resume_refused(_field, _value))


@case("metrics-torn-tail", "1", "metrics.jsonl whose last line is torn", "resumes, dropping the tail with a warning "
      "naming the file", "ok")
def _(inputs, world):
    run = _run_copy(inputs, world)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 2, "time_s": 0.')
    return _fit("--resume", run, expect=[f"{run / 'metrics.jsonl'}, line 2: dropped a torn last line"], writes=[run])


@case("metrics-garbage-middle", "1", "metrics.jsonl with a garbage line before the last",
      "Error naming the file and line 1; nothing touched", "error")
def _(inputs, world):
    run = _run_copy(inputs, world)
    metrics = run / "metrics.jsonl"
    metrics.write_text("garbage}\n" + metrics.read_text())
    return _fit("--resume", run, expect=[f"{metrics}, line 1"], writes=[run / LOCK_FILE])


@case("metrics-record-without-epoch", "1", "metrics.jsonl record without 'epoch'", "Error naming file, line, 'epoch'",
      "error")
def _(inputs, world):
    run = _run_copy(inputs, world)
    metrics = run / "metrics.jsonl"
    metrics.write_text('{"loss": {}}\n' + metrics.read_text())
    return _fit("--resume", run, expect=[f"{metrics}, line 1", "'epoch'"], writes=[run / LOCK_FILE])


# ------------------------------------------------------------------------- item 1: index sidecars
def _sidecar(file: str, field: str, change: Callable[[dict], object]):
    def setup(inputs, world):
        index = _index_copy(inputs, world)
        _edit_json(index / file, change)
        return _retrieve(index, _query(inputs), expect=[str(index / file), field])

    return setup


for _id, _file, _field, _change in [
    ("labels-a-number", "gallery.json", "labels", lambda g: g.update(labels=7)),
    ("items-not-strings", "gallery.json", "items", lambda g: g.update(items=list(range(len(g["items"]))))),
    ("items-a-string", "gallery.json", "items", lambda g: g.update(items="apple/0.png")),
    ("params-not-mapping", "index.json", "params", lambda m: m.update(params=[1, 2])),
    ("index-type-disagrees", "index.json", "index_type", lambda m: m.update(index_type="hnsw",
                                                                              params={"ef_search": 16})),
]:
    case(f"sidecar-{_id}", "1", f"index {_file} with {_id.replace('-', ' ')}", f"Error naming {_file} and {_field}",
         "error")(_sidecar(_file, _field, _change))


# ------------------------------------------------------------------------------- item 1: config
for _id, _args, _key in [("nan", ["--set", "alpha=.nan"], "alpha"),
                         ("decay-gamma-0", ["--set", "decay_gamma=0"], "decay_gamma"),
                         ("seed-negative", ["--seed", "-1"], "seed"),
                         ("seed-oversized", ["--seed", str(2**32)], "seed")]:
    case(f"config-{_id}", "1", f"fit {' '.join(_args)}", f"Error naming the key {_key}; no run folder", "error")(
        lambda inputs, world, _args=_args, _key=_key: _fit(*_args, "--out", inputs / FIT_OUT,
                                                            expect=[f"config key '{_key}'"]))


@case("config-file-inf", "1", "YAML config with alpha: .inf", "Error naming the file and alpha", "error")
def _(inputs, world):
    (inputs / "cfg.yaml").write_text("alpha: .inf\n")
    return _fit("--config", inputs / "cfg.yaml", "--out", inputs / FIT_OUT, expect=["cfg.yaml", "'alpha'"])


@case("config-file-not-utf8", "1", "Latin-1 YAML config", "Error naming the file (not UTF-8)", "error")
def _(inputs, world):
    (inputs / "cfg.yaml").write_bytes("epochs: 3 # \xe9t\xe9\n".encode("latin-1"))
    return _fit("--config", inputs / "cfg.yaml", "--out", inputs / FIT_OUT, expect=["cfg.yaml", "UTF-8"])


# ------------------------------------------------------------------------------- item 1: disk full
def _tmpfs(folder: Path, size: str) -> Callable[[], None]:
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True,
                   capture_output=True)
    return lambda: subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until ``leave`` bytes are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))


def _no_temporaries(folder: Path) -> list[str]:
    left = [str(p) for p in folder.rglob("*") if ".tmp" in p.name]
    return [f"temporary files left: {left}"] if left else []


@case("disk-full-checkpoint", "1", "fit --resume on a tmpfs with 64 KB free", "Error: no space left on device "
      "writing PATH; previous checkpoints intact; temporary file removed", "error")
def _(inputs, world):
    disk = inputs / "disk"
    unmount = _tmpfs(disk, "4m")
    run = world.copy("run", disk / "run")
    _fill(disk, 64 * 1024)
    before = file_hashes(run / "checkpoints")

    def check(output: str) -> list[str]:
        found = _no_temporaries(disk)
        if file_hashes(run / "checkpoints") != before:
            found.append("the previous checkpoints changed")
        return found

    return _fit("--resume", run, expect=["Error: no space left on device writing", str(run / "checkpoints")],
                writes=[disk], check=check, cleanup=unmount)


@case("disk-full-index", "1", "index --out on a full tmpfs", "Error: no space left on device writing PATH; "
      "temporary file removed", "error")
def _(inputs, world):
    disk = inputs / "disk"
    unmount = _tmpfs(disk, "1m")
    _fill(disk, 0)
    return Command(["index", world.model, "--images", world.gallery, "--out", disk / "idx", "--workers", "0"],
                   expect=["Error: no space left on device writing", str(disk / "idx")], writes=[disk],
                   check=lambda output: _no_temporaries(disk), cleanup=unmount)


# ------------------------------------------------------------------ item 2: reading outside the gallery
def _item(value_of: Callable[[Path, Path], str], digits: bool = False):
    def setup(inputs, world):
        index = _index_copy(inputs, world, digits=digits)
        value = value_of(inputs, index)
        _edit_json(index / "gallery.json", lambda g: g["items"].__setitem__(0, value))
        return _retrieve(index, _query(inputs), "--show", inputs / "show.png", expect=[str(index), "corrupt"])

    return setup


for _id, _given, _value in [
    ("traversal", "gallery item ../../sentinel/secret.key", lambda inputs, index: "../../../sentinel/secret.key"),
    ("absolute", "gallery item /etc/passwd", lambda inputs, index: "/etc/passwd"),
    ("proc", "gallery item /proc/self/environ", lambda inputs, index: "/proc/self/environ"),
]:
    case(f"index-item-{_id}", "2", _given, "index refused as corrupt; nothing drawn", "error")(_item(_value))

case("dataset-index-item-traversal", "2", "digits-split index item ../../etc/passwd",
     "index refused as corrupt", "error")(_item(lambda inputs, index: "../../../../etc/passwd", digits=True))


@case("index-item-symlink-out", "2", "gallery image replaced by a link to a file outside the root",
      "index refused as corrupt", "error")
def _(inputs, world):
    gallery, index = _own_gallery(inputs, world)
    (gallery / "apple" / "0.png").unlink()
    (gallery / "apple" / "0.png").symlink_to(inputs.parent / "sentinel" / "photo.png")
    return _retrieve(index, _query(inputs), "--show", inputs / "show.png", expect=["apple/0.png", "corrupt"])


@case("index-item-fifo", "2", "gallery image replaced by a FIFO", "index refused (not a regular file), no hang",
      "error")
def _(inputs, world):
    gallery, index = _own_gallery(inputs, world)
    (gallery / "apple" / "0.png").unlink()
    os.mkfifo(gallery / "apple" / "0.png")
    return _retrieve(index, _query(inputs), "--show", inputs / "show.png", expect=["apple/0.png"])


@case("index-old-format", "2", "index.json of version 1", "refused with a message to rebuild it", "error")
def _(inputs, world):
    index = _index_copy(inputs, world)
    _edit_json(index / "index.json", lambda m: m.update(version=1))
    return _retrieve(index, _query(inputs), expect=[str(index), "gcahng index"])


@case("index-scores-out-of-range", "2", "vector store scaled by 1000 (cosines far outside [-1, 1])",
      "reported as corrupt", "error")
def _(inputs, world):
    index = _index_copy(inputs, world)
    stored = faiss.read_index(str(index / "index.faiss"))
    vectors = stored.reconstruct_n(0, stored.ntotal) * 1000.0
    scaled = faiss.IndexFlatIP(stored.d)
    scaled.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(scaled, str(index / "index.faiss"))
    return _retrieve(index, world.gallery / "apple" / "0.png", expect=[str(index), "corrupt"])


# --------------------------------------------------------------------------- item 3: one writer per folder
_HOLDER = """
import sys, time
from gcahng.locking import folder_lock
with folder_lock(sys.argv[1]):
    print("ready", flush=True)
    time.sleep(600)
"""


def _held(folder: Path) -> tuple[int, Callable[[], None]]:
    """Start a process that holds ``folder``'s lock; returns its PID and how to kill it (-9)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], env=cli_environment(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"

    def stop() -> None:
        holder.kill()
        holder.wait()

    return holder.pid, stop


def _busy(command: Callable[[Path, Path, World], list], folder_of: Callable[[Path, World], Path]):
    def setup(inputs, world):
        folder = folder_of(inputs, world)
        pid, stop = _held(folder)
        return Command(command(inputs, folder, world), expect=[f"Error: {folder} is in use by process {pid}"],
                       cleanup=stop)

    return setup


def _fresh(inputs: Path, world: World) -> Path:
    return inputs / "busy"


for _id, _command, _folder in [
    ("fit-out", lambda i, f, w: ["fit", "--out", f, "--no-progress"], _fresh),
    ("fit-resume", lambda i, f, w: ["fit", "--resume", f, "--no-progress"], lambda i, w: _run_copy(i, w)),
    ("index-out", lambda i, f, w: ["index", w.model, "--images", w.gallery, "--out", f, "--workers", "0"], _fresh),
    ("ablate-out", lambda i, f, w: ["ablate", "--grid", "alpha=4,5", "--seeds", "1", "--epochs", "1", "--out", f],
     _fresh),
]:
    case(f"lock-{_id}", "3", f"{_id.replace('-', ' --')} DIR while another process holds DIR",
         "Error: DIR is in use by process PID; DIR untouched", "error")(_busy(_command, _folder))


# ------------------------------------------------------------------------ item 4: nothing overwritten
@case("index-out-not-an-index", "4", "index --out a folder of the user's files (skipped.txt, index.json)",
      "refused; the folder untouched", "error")
def _(inputs, world):
    mine = inputs / "mine"
    mine.mkdir()
    (mine / "skipped.txt").write_text("my list\n")
    (mine / "index.json").write_text('{"mine": true}\n')
    return Command(["index", world.model, "--images", world.gallery, "--out", mine, "--workers", "0"],
                   expect=[str(mine)])


@case("fit-out-not-a-run", "4", "fit --out a folder of the user's files (metrics.jsonl, test_metrics.json, notes)",
      "refused; the folder untouched", "error")
def _(inputs, world):
    mine = inputs / "mine"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "metrics.jsonl").write_text('{"mine": 1}\n')
    (mine / "test_metrics.json").write_text("{}\n")
    (mine / "checkpoints" / ".notes.abcdef12.tmp").write_text("draft\n")
    return _fit("--epochs", "1", "--out", mine, expect=[str(mine), "is not empty"])


@case("index-rebuild-interrupted", "4", "index folder whose index.faiss is another index's (a rebuild killed "
      "before index.json)", "reported as corrupt", "error")
def _(inputs, world):
    index = _index_copy(inputs, world)
    stored = faiss.read_index(str(index / "index.faiss"))
    vectors = np.stack([stored.reconstruct(i) for i in reversed(range(stored.ntotal))])  # another order
    other = faiss.IndexFlatIP(stored.d)
    other.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(other, str(index / "index.faiss"))
    return _retrieve(index, world.gallery / "apple" / "0.png", expect=[str(index / "index.faiss"), "corrupt"])


@case("index-out-force", "4", "index --out an existing index --force", "replaces the index", "ok")
def _(inputs, world):
    index = _index_copy(inputs, world)
    return Command(["index", world.model, "--images", world.gallery, "--out", index, "--workers", "0", "--force"],
                   expect=["indexed 9 images"], writes=[index])


@case("show-is-the-query", "4", "retrieve --show OUT where OUT is the query image", "refused; the query untouched",
      "error")
def _(inputs, world):
    query = _query(inputs)
    return _retrieve(world.index, query, "--show", query, expect=[str(query)])


@case("show-is-a-gallery-image", "4", "retrieve --show OUT where OUT is a gallery image",
      "refused; the gallery image untouched", "error")
def _(inputs, world):
    gallery, index = _own_gallery(inputs, world)
    target = gallery / "pear" / "1.png"
    return _retrieve(index, _query(inputs), "--show", target, expect=[str(target)])


# ------------------------------------------------------------------------ item 5: nothing useful
@case("index-nan-weights", "5", "index with a checkpoint holding a NaN weight", "refused naming the file; no index",
      "error")
def _(inputs, world):
    def change(payload):
        weight = next(v for v in payload["model"].values() if v.is_floating_point())
        weight.view(-1)[0] = float("nan")

    ckpt = _checkpoint(inputs, change)
    return Command(["index", ckpt, "--images", world.gallery, "--out", inputs / "idx", "--workers", "0"],
                   expect=[str(ckpt)])


# ------------------------------------------------------------------------------- item 6: datasets
BAD_IMAGES = {
    "a/truncated.jpg": jpeg_bytes(1, (40, 30))[:200],
    "a/zero.jpg": b"",
    "a/html.jpg": b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n",
    "b/bomb.png": bomb_png_bytes(),
    "b/bomb.jpg": bomb_jpeg_bytes(),
}
"""Unreadable files: each must be named (error in data check, skipped with a warning elsewhere)."""


def _odd_images(folder: Path) -> list[str]:
    """CMYK, 16-bit grey and EXIF-rotated JPEG/PNG files: readable, so never reported as errors."""
    Image.new("CMYK", (40, 30), (10, 200, 30, 0)).save(folder / "a" / "cmyk.jpg")
    Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50).save(folder / "b" / "grey16.png")
    rotated = Image.new("RGB", (40, 30), (0, 0, 255))
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    rotated.save(folder / "b" / "exif.jpg", exif=exif)
    return ["a/cmyk.jpg", "b/grey16.png", "b/exif.jpg"]


def _hostile_folder(folder: Path, bad: dict[str, bytes]) -> list[str]:
    make_folder(folder, {"a": 3, "b": 3})
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    return _odd_images(folder)


def _not_errors(folder: Path, names: list[str]) -> Callable[[str], list[str]]:
    return lambda output: [f"{name} reported as an error" for name in names if f"error: {folder / name}" in output]


@case("data-check-hostile-images", "6", "folder dataset with 30000x30000 PNG and JPEG headers, truncated, zero-byte, "
      "HTML-as-JPEG, CMYK, 16-bit, EXIF-rotated images", "each unreadable one named; CMYK/16-bit/EXIF read", "error")
def _(inputs, world):
    readable = _hostile_folder(inputs / "data", BAD_IMAGES)
    expect = [f"error: {inputs / 'data' / name}" for name in BAD_IMAGES] + ["decompression bomb", "CMYK", "I;16"]
    return Command(["data", "check", "folder", "--data-root", inputs / "data", "--workers", "1"], expect=expect,
                   check=_not_errors(inputs / "data", readable))


@case("eval-loader-bombs", "6", "eval on a folder dataset whose test images include 30000x30000 PNG/JPEG headers",
      "runs; each bomb skipped with a warning naming it", "ok")
def _(inputs, world):
    _hostile_folder(inputs / "data", {k: v for k, v in BAD_IMAGES.items() if k.startswith("b/")})
    return _eval(world.model, inputs, "folder", "--data-root", str(inputs / "data"), names_checkpoint=False,
                 expect=[f"{inputs / 'data' / 'b' / name}: refused as a possible decompression bomb"
                         for name in ("bomb.png", "bomb.jpg")])


@case("index-loader-hostile-images", "6", "index --images over a gallery with bombs, truncated, zero-byte, "
      "HTML-as-JPEG, CMYK, 16-bit, EXIF-rotated images", "indexes the readable ones; each unreadable one named", "ok")
def _(inputs, world):
    _hostile_folder(inputs / "gallery", BAD_IMAGES)
    out = inputs / "idx"
    return Command(["index", world.model, "--images", inputs / "gallery", "--out", out, "--workers", "0"],
                   expect=["indexed 9 images", "skipped 5 unreadable image(s)"]
                   + [str(inputs / "gallery" / name) for name in BAD_IMAGES], writes=[out])


def _empty_sop(inputs: Path) -> Path:
    base = make_sop(inputs / "sop", train={1: 2, 2: 2}, test={11319: 2, 11320: 2})
    (base / "Ebay_train.txt").write_text("image_id class_id super_class_id path\n")
    return base


@case("data-check-empty-split", "6", "SOP whose Ebay_train.txt holds only its header", "error naming the file",
      "error")
def _(inputs, world):
    base = _empty_sop(inputs)
    return Command(["data", "check", "sop", "--data-root", inputs / "sop"], expect=[str(base / "Ebay_train.txt")])


@case("fit-empty-split", "6", "fit sop whose Ebay_train.txt holds only its header", "Error naming the file; "
      "no run folder", "error")
def _(inputs, world):
    base = _empty_sop(inputs)
    return _fit("sop", "--data-root", inputs / "sop", "--backbone", "tiny_cnn", "--no-pretrained",
                "--out", inputs / FIT_OUT, expect=[f"Error: {base / 'Ebay_train.txt'}"])


INSHOP_ROWS = [(1, "train"), (1, "train"), (2, "train"), (2, "train"), (5, "query"), (5, "gallery"), (5, "gallery"),
               (7, "query"), (7, "query"), (8, "query"), (8, "gallery")]
"""Item 7 has two query images and no gallery image."""


@case("data-check-inshop-query-without-gallery", "6", "In-Shop item id_00000007 with queries, no gallery image",
      "reported naming the item", "ok")
def _(inputs, world):
    make_inshop(inputs / "inshop", INSHOP_ROWS)
    return Command(["data", "check", "inshop", "--data-root", inputs / "inshop"],
                   expect=["id_00000007", "no gallery image"])


@case("eval-inshop-query-without-gallery", "6", "eval on In-Shop with an item without gallery images",
      "its 2 queries left out of Recall@K, the number printed with the table", "ok")
def _(inputs, world):
    make_inshop(inputs / "inshop", INSHOP_ROWS)
    return _eval(world.model, inputs, "inshop", "--data-root", str(inputs / "inshop"), names_checkpoint=False,
                 expect=["2 without a same-label item in the gallery, left out of Recall@K"])


# --------------------------------------------------------------------------- item 7: non-regular paths
@case("query-fifo", "7", "a FIFO as --query", "refused by type, no hang", "error")
def _(inputs, world):
    os.mkfifo(inputs / "q.png")
    return _retrieve(world.index, inputs / "q.png", expect=[str(inputs / "q.png"), "FIFO"])


@case("query-socket", "7", "a Unix socket as --query", "refused by type", "error")
def _(inputs, world):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(inputs / "q.png"))
    return _retrieve(world.index, inputs / "q.png", expect=[str(inputs / "q.png"), "a socket"], cleanup=server.close)


@case("query-device", "7", "/dev/zero as --query", "refused by type, no hang", "error")
def _(inputs, world):
    return _retrieve(world.index, Path("/dev/zero"), expect=["/dev/zero", "character device"])


@case("query-link-to-fifo", "7", "--query a symlink to a FIFO", "message names the typed path, then its target",
      "error")
def _(inputs, world):
    os.mkfifo(inputs / "pipe")
    (inputs / "link.png").symlink_to(inputs / "pipe")
    return _retrieve(world.index, inputs / "link.png", expect=[f"{inputs / 'link.png'} (a link to {inputs / 'pipe'})"])


@case("gallery-fifo", "7", "index --images over a gallery holding a FIFO", "the FIFO named and left out, no hang",
      "ok")
def _(inputs, world):
    gallery = world.copy("gallery", inputs / "gallery")
    os.mkfifo(gallery / "apple" / "pipe.png")
    out = inputs / "idx"
    return Command(["index", world.model, "--images", gallery, "--out", out, "--workers", "0"],
                   expect=[str(gallery / "apple" / "pipe.png"), "indexed 9 images"], writes=[out])


@case("config-fifo", "7", "fit --config a FIFO", "refused by type, no hang", "error")
def _(inputs, world):
    os.mkfifo(inputs / "cfg.yaml")
    return _fit("--config", inputs / "cfg.yaml", "--out", inputs / FIT_OUT, expect=[str(inputs / "cfg.yaml"), "FIFO"])


@case("checkpoint-fifo", "7", "eval a FIFO as checkpoint", "refused by type, no hang", "error")
def _(inputs, world):
    os.mkfifo(inputs / "ckpt.pt")
    return _eval(inputs / "ckpt.pt", inputs, "digits", expect=["FIFO"])


# --------------------------------------------------------------------------------- earlier cases
for _name, _data in [("truncated", jpeg_bytes(1, (40, 30))[:200]), ("zero-byte", b""),
                     ("html-as-jpeg", b"<html><body>Not Found</body></html>\n"), ("bomb", bomb_png_bytes())]:
    case(f"query-{_name}", "earlier" if _name != "bomb" else "6", f"a {_name} image as --query",
         "Error naming the image", "error")(
        lambda inputs, world, _data=_data: (
            (inputs / "q.jpg").write_bytes(_data),
            _retrieve(world.index, inputs / "q.jpg", expect=[str(inputs / "q.jpg")]))[1])


@case("data-check-symlink-out-of-root", "earlier", "folder dataset with an image linking outside its root",
      "error naming the link", "error")
def _(inputs, world):
    make_folder(inputs / "data", {"a": 2, "b": 2})
    (inputs / "data" / "a" / "outside.png").symlink_to(inputs.parent / "sentinel" / "photo.png")
    return Command(["data", "check", "folder", "--data-root", inputs / "data"],
                   expect=[str(inputs / "data" / "a" / "outside.png"), "outside the dataset root"])


@case("data-check-path-traversal", "earlier", "CUB images.txt listing ../../sentinel/photo.png",
      "error naming images.txt and the line", "error")
def _(inputs, world):
    base = make_cub(inputs / "cub", {1: 2, 150: 2})
    images = base / "images.txt"
    lines = images.read_text().splitlines()
    lines[0] = "1 ../../../sentinel/photo.png"
    images.write_text("\n".join(lines) + "\n")
    return Command(["data", "check", "cub200", "--data-root", inputs / "cub"], expect=[f"{images}:1", "'..'"])


assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
