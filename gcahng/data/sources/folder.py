"""A user's own images: one subfolder per class under the root.

Class folders are sorted by name; the first ``ceil(n/2)`` classes are ``train`` and the rest
``test``, unless ``split_file`` assigns them. Every file with an image ending (see
``IMAGE_EXTENSIONS``) anywhere below a class folder is taken; hidden files and macOS ``._*``
files are not. Symbolic links may not lead outside the root.

``split_file`` format: one class per line, ``<class folder name> <train|test>`` (the split is
the last word, so folder names may contain spaces); ``#`` starts a comment. Folders the file
does not name are left out; names it lists must exist.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from gcahng.data.files import verify_files
from gcahng.data.images import is_hidden_file, is_image_name
from gcahng.data.metadata import read_lines
from gcahng.data.records import SplitRecords
from gcahng.data.sources.base import DATASETS, DatasetSource
from gcahng.errors import DataError

HOW_TO_GET = (
    "A folder dataset is a folder with one subfolder per class holding that class's images, "
    "e.g. DIR/cat/1.jpg, DIR/dog/2.png; pass it as the root (--data-root DIR)."
)


def _class_folders(root: Path) -> list[str]:
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder.\n{HOW_TO_GET}")
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not is_hidden_file(e.name))
    if not names:
        raise DataError(f"{root} holds no class subfolders.\n{HOW_TO_GET}")
    return names


def _assignment(root: Path, names: list[str], split_file: Path | None) -> dict[str, str]:
    if split_file is None:
        half = math.ceil(len(names) / 2)
        return {name: ("train" if i < half else "test") for i, name in enumerate(names)}
    assigned: dict[str, str] = {}
    split_file = Path(split_file)
    for line, text in read_lines(split_file):
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{split_file}:{line}: expected '<class folder name> <train|test>', got {text!r}")
        name, split = parts
        if split not in ("train", "test"):
            raise DataError(f"{split_file}:{line}: split must be 'train' or 'test', got {split!r}")
        if name not in names:
            raise DataError(f"{split_file}:{line}: class folder {root / name} does not exist")
        if name in assigned:
            raise DataError(f"{split_file}:{line}: class {name!r} is listed twice")
        assigned[name] = split
    return assigned


def _images_of(folder: Path) -> list[str]:
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not is_hidden_file(d))
        found += [os.path.join(directory, f) for f in sorted(files) if is_image_name(f)]
    return found


def read_folder(root: Path, split_file: str | Path | None = None) -> dict[str, SplitRecords]:
    """``train`` and ``test`` records with class ids 1..n in sorted folder-name order."""
    root = Path(root).expanduser()
    names = _class_folders(root)
    assignment = _assignment(root, names, None if split_file is None else Path(split_file))
    by_split: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    class_names = {}
    for class_id, name in enumerate(names, start=1):
        if name not in assignment:
            continue
        images = _images_of(root / name)
        if not images:
            raise DataError(f"class folder {root / name} holds no image files")
        paths, keys = by_split[assignment[name]]
        paths += images
        keys += [class_id] * len(images)
        class_names[class_id] = name
    for split, (paths, _) in by_split.items():
        if not paths:
            raise DataError(f"{root}: the {split} split has no classes (need at least two class folders)")
    every = [p for paths, _ in by_split.values() for p in paths]
    verify_files(root, every, [f"class folder {os.path.dirname(p)}" for p in every])
    return {
        split: SplitRecords(paths, np.asarray(keys, dtype=np.int64), {k: class_names[k] for k in set(keys)})
        for split, (paths, keys) in by_split.items()
    }


DATASETS.register("folder")(
    DatasetSource(
        name="folder",
        read=read_folder,
        splits=("train", "test"),
        eval_splits=("test",),
        how_to_get=HOW_TO_GET,
    )
)
