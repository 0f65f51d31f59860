"""Checking a path the user handed over before anything opens it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from gcahng.errors import InputError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def describe(path: str | os.PathLike) -> str:
    """``path`` as the user typed it, followed by its target when it is a symbolic link."""
    path = os.fspath(path)
    return f"{path} (a link to {os.path.realpath(path)})" if os.path.islink(path) else path


def non_regular_reason(path: str | os.PathLike) -> str | None:
    """None when ``path`` (symlinks followed) is a regular file, else why not: "not found", "a FIFO", ..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if stat.S_ISREG(mode):
        return None
    return next((f"{name}, not a regular file" for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file(path: str | os.PathLike, what: str, error: type[Exception] = InputError) -> Path:
    """``path`` as a :class:`Path` when it is a regular file (links followed); else raise ``error``
    with a message like ``query photo.jpg (a link to /tmp/fifo): a FIFO, not a regular file``."""
    reason = non_regular_reason(path)
    if reason is not None:
        raise error(f"{what} {describe(path)}: {reason}")
    return Path(path)
