"""Finding image files in folders (never opening anything but regular files), and class labels from an
ImageFolder-style layout."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from gcahng.data.images import IMAGE_EXTENSIONS, UnreadableImageError, is_hidden_file, is_image_name, load_rgb
from gcahng.errors import InputError
from gcahng.user_paths import describe, non_regular_reason, regular_file


class ImageScan(NamedTuple):
    """The image-named entries under a folder: ``paths``, the regular files (links followed), and
    ``not_regular``, ``(path, reason)`` of the others (FIFOs, sockets, devices, dangling links),
    which are never opened: a FIFO would block the reader forever; and of names with a line break
    or tab, which no one-path-per-line list can hold (the path is given with ``\\n`` etc.)."""

    paths: list[Path]
    not_regular: list[tuple[str, str]]


def scan_images(folder: str | Path) -> ImageScan:
    """Every image-named entry under ``folder`` (recursively, sorted; hidden files and folders skipped).

    Raises :class:`InputError` when the folder does not exist or holds no image name.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"not a folder: {describe(folder)}")
    names = sorted(
        path
        for path in folder.rglob("*")
        if is_image_name(path.name)
        and not path.is_dir()
        and not any(is_hidden_file(part) for part in path.relative_to(folder).parts)
    )
    if not names:
        raise InputError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {folder}")
    reasons = [_LINE_BREAK if _has_line_break(path) else non_regular_reason(path) for path in names]
    return ImageScan([p for p, r in zip(names, reasons, strict=True) if r is None],
                     [(_escaped(describe(p)), r) for p, r in zip(names, reasons, strict=True) if r is not None])


_LINE_BREAK = "its name holds a line break or tab (a gallery lists one path per line)"


def _has_line_break(path: Path) -> bool:
    return any(c in str(path) for c in "\n\r\t")


def _escaped(text: str) -> str:
    """``text`` with line breaks and tabs written as ``\\n``, ``\\r``, ``\\t`` (one line of ``skipped.txt``)."""
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def list_images(folder: str | Path) -> list[Path]:
    """The regular image files under ``folder`` (see :func:`scan_images`); others are left out."""
    return scan_images(folder).paths


def expand_queries(queries: Iterable[str | Path]) -> list[Path]:
    """Query arguments to image paths: a folder stands for every image in it.

    Raises :class:`InputError` for a path that does not exist or is not a regular file (a FIFO,
    a socket, a device: refused before anything opens it), also inside a query folder.
    """
    paths: list[Path] = []
    for query in queries:
        path = Path(query).expanduser()
        if path.is_dir():
            scan = scan_images(path)
            if scan.not_regular:
                raise InputError(f"query {scan.not_regular[0][0]}: {scan.not_regular[0][1]}")
            paths.extend(scan.paths)
        elif not path.exists():
            raise InputError(f"query not found: {describe(path)}")
        else:
            paths.append(regular_file(path, "query"))
    return paths


def read_image(path: str | Path) -> Image.Image:
    """:func:`~gcahng.data.images.load_rgb` of a regular file; any other path (a FIFO would block
    ``open()``) raises :class:`~gcahng.data.images.UnreadableImageError` naming it."""
    reason = non_regular_reason(path)
    if reason is not None:
        raise UnreadableImageError(f"{describe(path)}: {reason}")
    return load_rgb(path)


def folder_labels(paths: Sequence[Path], root: Path) -> list[str] | None:
    """Class names from an ImageFolder layout (``root/<class>/.../image``), or None.

    Labels are known only when every image sits inside a sub-folder of ``root`` and there
    are at least two such sub-folders; a flat folder has no labels.
    """
    labels = []
    for path in paths:
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            return None
        labels.append(parts[0])
    return labels if len(set(labels)) >= 2 else None
