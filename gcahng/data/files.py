"""Turning paths listed in metadata into files under the dataset root, safely.

Metadata must not point outside the dataset root: absolute paths, ``..`` components and
symbolic links whose target lies outside the root are rejected. Existence is checked by
listing each image folder once (one ``scandir`` per folder instead of one ``stat`` per file),
so that checking SOP's 120,053 files takes a fraction of a second.
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from gcahng.errors import DataError

_MAX_LISTED = 10


def safe_join(root: Path, relative: str, where: str) -> str:
    """``root / relative`` as a string, refusing absolute paths and ``..`` components.

    ``where`` (e.g. ``"images.txt:12"``) is named in the error message.
    """
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(relative).drive or relative.startswith(("/", "\\")):
        raise DataError(f"{where}: absolute path {relative!r} is not allowed; paths must be relative to {root}")
    if ".." in posix.parts:
        raise DataError(f"{where}: path {relative!r} points outside the dataset root {root} ('..')")
    return os.path.join(root, *posix.parts)


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


def verify_files(root: Path, paths: Sequence[str], where: Sequence[str]) -> None:
    """Check that every path exists as a file inside ``root`` (symlinks may not escape it).

    ``paths`` are absolute (from :func:`safe_join`); ``where[i]`` says where ``paths[i]`` was
    listed. Raises one :class:`DataError` listing the number of problems and the first ten.
    """
    real_root = os.path.realpath(root)
    by_folder: dict[str, list[int]] = defaultdict(list)
    for index, path in enumerate(paths):
        by_folder[os.path.dirname(path)].append(index)
    problems: list[str] = []
    for folder, indices in by_folder.items():
        real_folder = os.path.realpath(folder)
        if os.path.isdir(folder) and not _inside(real_folder, real_root):
            problems.extend(
                f"{where[i]}: {paths[i]} lies in a folder that links outside the dataset root {root}"
                for i in indices
            )
            continue
        try:
            entries = {entry.name: entry for entry in os.scandir(folder)}
        except OSError:
            entries = {}
        for i in indices:
            entry = entries.get(os.path.basename(paths[i]))
            if entry is None:
                problems.append(f"{where[i]}: listed file {paths[i]} does not exist")
            elif entry.is_symlink() and not _inside(os.path.realpath(entry.path), real_root):
                problems.append(f"{where[i]}: {paths[i]} is a symbolic link pointing outside the dataset root {root}")
            elif (reason := _not_a_file(entry)) is not None:
                problems.append(f"{where[i]}: listed path {paths[i]} {reason}")
    if problems:
        shown = "\n  ".join(problems[:_MAX_LISTED])
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        raise DataError(f"{len(problems)} listed image file(s) are unusable:\n  {shown}{more}")


def _not_a_file(entry: os.DirEntry) -> str | None:
    """Why ``entry`` (links followed) is not a regular file, or None when it is one."""
    try:
        return None if entry.is_file() else "is not a file"
    except OSError as err:  # a link loop (ELOOP), a name too long, ...
        return f"cannot be opened ({err.strerror})"


def locate(root: Path, marker: str, subfolders: Sequence[str], how_to_get: str) -> Path:
    """The folder holding ``marker``: ``root`` itself or one of ``root/<subfolder>``.

    Lets users pass either the extracted dataset folder or the folder they extracted into.
    A missing root or marker raises a :class:`DataError` saying which file was expected
    where, followed by ``how_to_get``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder.\n{how_to_get}")
    for base in (root, *(root / sub for sub in subfolders)):
        if (base / marker).is_file():
            return base
    tried = ", ".join(str(root / sub / marker) for sub in subfolders)
    also = f" (also tried {tried})" if subfolders else ""
    raise DataError(f"expected {root / marker}{also}, but it does not exist.\n{how_to_get}")
