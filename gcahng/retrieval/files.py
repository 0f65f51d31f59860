"""Finding image files in folders, and class labels from an ImageFolder-style layout."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from gcahng.data.images import IMAGE_EXTENSIONS, is_hidden_file, is_image_name
from gcahng.errors import InputError


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (recursively), sorted; hidden files and folders are skipped.

    Raises :class:`InputError` when the folder does not exist or holds no image.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    images = sorted(
        path
        for path in folder.rglob("*")
        if is_image_name(path.name)
        and path.is_file()
        and not any(is_hidden_file(part) for part in path.relative_to(folder).parts)
    )
    if not images:
        raise InputError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {folder}")
    return images


def expand_queries(queries: Iterable[str | Path]) -> list[Path]:
    """Query arguments to image paths: a folder stands for every image in it.

    Raises :class:`InputError` for a path that does not exist.
    """
    paths: list[Path] = []
    for query in queries:
        path = Path(query).expanduser()
        if path.is_dir():
            paths.extend(list_images(path))
        elif path.is_file():
            paths.append(path)
        else:
            raise InputError(f"query not found: {path}")
    return paths


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
