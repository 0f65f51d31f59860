"""Writing a file so that readers see the old or the new content, never a torn one.

The content goes to a uniquely named temporary beside the target (``.NAME.XXXXXXXX.tmp``), is
flushed and fsync'ed, then renamed over the target (a symbolic link at the target is replaced,
never written through) and the rename is made durable. A full disk is one clear error naming
the target; the temporary file is removed on any failure, and one that a killed writer left is
recognised by its name (:func:`remove_stale_temporaries`).
"""
from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from gcahng.errors import DiskFullError

TEMP_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX))


def is_disk_full(err: BaseException, where: str | Path | None = None) -> bool:
    """``ENOSPC``/``EDQUOT`` itself, or a library's writer error that wraps it (torch, faiss).

    torch's zip writer reports a failed write only as ``unexpected pos N vs M``; with ``where``
    (the folder written to), any write error while less than 1 MiB is free there counts too.
    """
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(err, RuntimeError) and any(
        text in str(err) for text in ("No space left", "file write failed", "unexpected pos")
    ):
        return True
    if where is not None and isinstance(err, OSError | RuntimeError):
        try:
            free = os.statvfs(where)
        except OSError:
            return False
        return free.f_bavail * free.f_frsize < 1 << 20
    return False


def is_temporary_of(name: str, target_name: str) -> bool:
    """Whether the file ``name`` is a temporary of :func:`write_atomically` for ``target_name``."""
    return name.startswith(f".{target_name}.") and is_temporary(name)


def is_temporary(name: str) -> bool:
    """Whether the file ``name`` is a temporary of :func:`write_atomically` (for any target)."""
    return _TEMPORARY.fullmatch(name) is not None


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete the temporaries that killed writers left in ``folder`` (which the caller owns, so no
    writer is running there); returns how many."""
    stale = [p for p in Path(folder).iterdir() if is_temporary(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_atomically(target: str | Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a uniquely named temporary beside ``target``, then rename it into place.

    ``write`` must flush what it wrote (see :func:`write_bytes`). A full disk raises
    :class:`DiskFullError` "no space left on device writing TARGET".
    """
    target = Path(target)
    tmp: str | None = None
    try:
        name = str(target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"))
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # unique; permissions as umask says
        tmp = name
        write(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err, target.parent):
            raise DiskFullError(f"no space left on device writing {target}") from None
        raise
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """fsync the folder so that a rename in it survives a power cut (where the system allows it)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(handle)


def write_bytes(data: bytes) -> Callable[[str], None]:
    """A ``write`` for :func:`write_atomically` that stores ``data``, flushed and fsync'ed."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return write
