"""One writer per folder: an exclusive POSIX record lock on ``DIR/.gcahng.lock``.

The lock is an ``fcntl`` record lock (``lockf``), not ``flock``: the kernel drops it when the
process that took it ends (also by ``kill -9``), so no stale lock is left behind, and forked
data-loader workers do not inherit it. A second process asking for the same folder gets
``Error: DIR is in use by process PID``.
"""
from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gcahng.errors import InputError

LOCK_FILE = ".gcahng.lock"
_FLOCK = "hhqqi4x"  # struct flock on Linux/glibc: l_type, l_whence, l_start, l_len, l_pid (+ padding)


def _holder(fd: int) -> int | None:
    """PID of the process holding a write lock on ``fd``'s file, or None when it is free now."""
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        l_type, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except (OSError, struct.error):
        return None
    return None if l_type == fcntl.F_UNLCK else pid


@contextmanager
def folder_lock(directory: str | Path, *, rank: int = 0) -> Iterator[Path]:
    """Hold the folder lock of ``directory`` (created if missing) for the ``with`` block.

    A folder created here that holds nothing but the lock when the block fails is removed again.

    Only ``rank`` 0 takes the lock (the other processes of a distributed run share its
    folder and do nothing here). Raises :class:`InputError` naming the folder and the PID of
    the process that holds it.
    """
    directory = Path(directory).expanduser()
    if rank != 0:
        yield directory
        return
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _holder(fd)
            raise InputError(f"{directory} is in use by process {pid if pid is not None else '(unknown)'}") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: the PID in the file is for people; the lock itself is held
            pass
        yield directory
    except BaseException:
        if created and [p.name for p in directory.iterdir()] == [LOCK_FILE]:  # a folder we made, left empty
            (directory / LOCK_FILE).unlink()
            directory.rmdir()
        raise
    finally:
        os.close(fd)  # closing the descriptor releases the lock
