"""The file ``gcahng retrieve --show OUT`` draws into: which ``OUT`` it may write, and writing it.

``OUT`` is written when it does not exist yet, or when it is a PNG an earlier ``--show`` wrote
(recognised by its text chunk :data:`SHOW_MARKER`), so re-running a command renews its picture.
Anything else is refused before the queries are embedded: a query or gallery image (links
followed, also when it is an earlier ``--show`` output that was put in the gallery), a path that
is not a regular file, and any other existing file. The PNG is written atomically (a temporary
file renamed over ``OUT``), so a link at ``OUT`` is replaced, never written through.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, PngImagePlugin

from gcahng.errors import InputError
from gcahng.formats.atomic import write_atomically, write_bytes
from gcahng.user_paths import describe, non_regular_reason

SHOW_MARKER = ("Software", "gcahng retrieve --show")
"""The PNG text chunk (key, value) every ``--show`` picture carries."""


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _is_show_output(path: Path) -> bool:
    """Whether the regular file ``path`` is a PNG with :data:`SHOW_MARKER` (read from its header chunks)."""
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get(SHOW_MARKER[0]) == SHOW_MARKER[1]
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def check_show_target(out: str | Path, queries: Iterable[str | Path], gallery: Iterable[str | Path]) -> Path:
    """``out`` when ``--show`` may write it (module docstring); else :class:`InputError` naming it.

    ``queries`` and ``gallery`` are the image files the command reads; they are compared with
    ``out`` by device and inode (links followed), only when ``out`` exists.
    """
    out = Path(out).expanduser()
    if not os.path.lexists(out):
        return out
    reason = non_regular_reason(out)
    if reason is not None:
        raise InputError(f"--show {describe(out)}: {reason}; give the PNG file to write")
    target = _identity(out)
    for kind, paths in (("a query image", queries), ("an image of the index's gallery", gallery)):
        same = next((p for p in paths if _identity(p) == target), None)
        if same is not None:
            shown = "" if os.fspath(same) == os.fspath(out) else f" ({same})"
            raise InputError(f"--show {describe(out)} is {kind}{shown}; it is never overwritten: "
                             "give another file name")
    if not _is_show_output(out):
        raise InputError(f"--show {describe(out)} exists and was not written by `gcahng retrieve --show`; "
                         "it is not overwritten: give another file name or remove it")
    return out


def write_show(canvas: Image.Image, out: str | Path) -> None:
    """Save ``canvas`` as the PNG ``out`` with :data:`SHOW_MARKER`, atomically (parent folders created)."""
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text(*SHOW_MARKER)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", pnginfo=info)
    write_atomically(out, write_bytes(buffer.getvalue()))
