"""The one atomic file writer: unique temporaries, permissions from the umask, links replaced
(never written through), a full disk named, nothing left behind."""
import errno
import os
from pathlib import Path

import pytest

from gcahng.errors import DiskFullError
from gcahng.formats.atomic import is_temporary_of, write_atomically, write_bytes


def test_temporaries_are_unique_and_permissions_follow_the_umask(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "data.json"
    seen: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(os.path.basename(src)), real_replace(src, dst)))
    for text in (b"one", b"two", b"three"):
        write_atomically(target, write_bytes(text))
    assert target.read_bytes() == b"three" and len(set(seen)) == 3
    assert all(is_temporary_of(name, "data.json") for name in seen)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["data.json"]


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    os.symlink(precious, tmp_path / "out.txt")
    write_atomically(tmp_path / "out.txt", write_bytes(b"new"))
    assert precious.read_text() == "keep me\n" and not (tmp_path / "out.txt").is_symlink()
    assert (tmp_path / "out.txt").read_bytes() == b"new"


def test_a_full_disk_names_the_target_and_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "index.faiss"
    target.write_bytes(b"old")

    def full(tmp: str) -> None:
        Path(tmp).write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=f"^no space left on device writing {target}$"):
        write_atomically(target, full)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["index.faiss"]
