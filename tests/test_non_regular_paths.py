"""A FIFO, a socket or a device handed over as a query, a gallery image, a config or a checkpoint is
refused by its type before anything opens it (a FIFO would block ``open()`` forever), and
messages about a link name the path the user typed, then its target. ``gcahng retrieve --show``
never overwrites a query, a gallery image or a file it did not write."""
import os
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.models.embedding import create_embedding_model
from gcahng.retrieval.show import SHOW_MARKER


@pytest.fixture()
def no_hang():
    """Fail the test (instead of blocking the suite) when something opens a FIFO after all."""
    def _timeout(signum, frame):
        raise TimeoutError("blocked for 120 s: a FIFO was opened")
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("paths")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / "gallery" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "gallery" / name / f"{i}.png")
    torch.manual_seed(0)
    model = create_embedding_model("tiny_cnn", 8, pretrained=False, image_size=32)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, root / "model.pt")
    result = CliRunner().invoke(cli, ["index", str(root / "model.pt"), "--images", str(root / "gallery"),
                                      "--out", str(root / "index"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    os.mkfifo(root / "fifo.png")
    os.symlink(root / "fifo.png", root / "link.png")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "socket.png"))
    return {"root": root, "index": root / "index", "model": root / "model.pt", "gallery": root / "gallery",
            "fifo": root / "fifo.png", "link": root / "link.png", "socket": root / "socket.png",
            "device": Path(os.devnull), "server": server}


def _error(args: list) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(("kind", "reason"), [("fifo", "a FIFO"), ("socket", "a socket"),
                                              ("device", "a character device"),
                                              ("link", "a FIFO")])
def test_a_query_that_is_not_a_regular_file_is_refused(world, no_hang, kind, reason) -> None:
    error = _error(["retrieve", "--query", world[kind], "--index", world["index"]])
    shown = f"{world['link']} (a link to {world['fifo']})" if kind == "link" else str(world[kind])
    assert error == f"Error: query {shown}: {reason}, not a regular file"


def test_a_fifo_inside_a_query_folder_is_refused(world, no_hang, tmp_path) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "q.png").write_bytes((world["gallery"] / "a" / "0.png").read_bytes())
    os.mkfifo(folder / "r.png")
    assert _error(["retrieve", "--query", folder, "--index", world["index"]]) == (
        f"Error: query {folder / 'r.png'}: a FIFO, not a regular file")


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "link"])
def test_a_checkpoint_or_config_that_is_not_a_regular_file_is_refused(world, no_hang, kind) -> None:
    shown = f"{world['link']} (a link to {world['fifo']})" if kind == "link" else str(world[kind])
    for args in (["eval", world[kind], "digits"],
                 ["index", world[kind], "--images", world["gallery"], "--out", world["root"] / "new_index"],
                 ["retrieve", "--query", world["gallery"] / "a" / "0.png", "--index", world["index"],
                  "--checkpoint", world[kind]]):
        error = _error(args)
        assert error.startswith(f"Error: checkpoint {shown}: a ") and error.endswith(", not a regular file"), error
    error = _error(["fit", "--config", world[kind]])
    assert error.startswith(f"Error: config file {shown}: a ") and error.endswith(", not a regular file"), error
    assert not (world["root"] / "new_index").exists()


def test_a_gallery_image_replaced_by_a_fifo_makes_the_index_corrupt(world, no_hang, tmp_path) -> None:
    import shutil

    gallery = tmp_path / "gallery"
    shutil.copytree(world["gallery"], gallery)
    result = CliRunner().invoke(cli, ["index", str(world["model"]), "--images", str(gallery), "--out",
                                      str(tmp_path / "index"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    (gallery / "b" / "1.png").unlink()
    os.mkfifo(gallery / "b" / "1.png")
    error = _error(["retrieve", "--query", world["gallery"] / "a" / "0.png", "--index", tmp_path / "index"])
    assert error.startswith(f"Error: corrupt index file {tmp_path / 'index' / 'gallery.json'}: items[4]: ")
    assert error.endswith(f"{gallery / 'b' / '1.png'}: a FIFO, not a regular file; rebuild it with `gcahng index`")


def _show(world, out, query=None):
    query = query if query is not None else world["gallery"] / "a" / "0.png"
    return CliRunner().invoke(cli, ["retrieve", "--query", str(query), "--index", str(world["index"]), "-k", "2",
                                    "--show", str(out), "--thumb-size", "16"])


def test_show_never_overwrites_a_query_or_a_gallery_image(world, tmp_path) -> None:
    query = tmp_path / "query.png"
    query.write_bytes((world["gallery"] / "a" / "1.png").read_bytes())
    os.symlink(world["gallery"] / "b" / "2.png", tmp_path / "to_gallery.png")
    before = {p: p.read_bytes() for p in [query, *sorted(world["gallery"].rglob("*.png"))]}
    result = _show(world, query, query=query)
    assert result.exit_code != 0 and f"Error: --show {query} is a query image; it is never overwritten" in result.output
    result = _show(world, world["gallery"] / "b" / "0.png", query=query)
    assert result.exit_code != 0 and "is an image of the index's gallery" in result.output
    result = _show(world, tmp_path / "to_gallery.png", query=query)
    assert result.exit_code != 0 and (f"--show {tmp_path / 'to_gallery.png'} (a link to "
                                      f"{world['gallery'] / 'b' / '2.png'}) is an image of the index's gallery"
                                      ) in result.output
    assert {p: p.read_bytes() for p in before} == before


def test_show_renews_its_own_picture_but_no_other_existing_file(world, tmp_path, no_hang) -> None:
    out = tmp_path / "grid.png"
    assert _show(world, out).exit_code == 0
    with Image.open(out) as image:
        assert image.info[SHOW_MARKER[0]] == SHOW_MARKER[1]
    out.write_bytes(out.read_bytes())  # same picture, new mtime: still ours
    result = _show(world, out)
    assert result.exit_code == 0, result.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    photo = tmp_path / "holiday.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(photo)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    for existing in (photo, notes):
        content = existing.read_bytes()
        result = _show(world, existing)
        assert result.exit_code != 0 and (f"Error: --show {existing} exists and was not written by "
                                          "`gcahng retrieve --show`") in result.output
        assert existing.read_bytes() == content
    result = _show(world, world["fifo"])
    assert result.exit_code != 0 and f"Error: --show {world['fifo']}: a FIFO, not a regular file" in result.output
