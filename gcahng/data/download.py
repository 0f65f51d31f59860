"""``gcahng data download``: fetch, verify, resume and safely extract the public archives.

Only CUB-200-2011 and SOP have stable public archives with known size and SHA-256; for the
other datasets the error message gives the official source and the expected layout.
"""
from __future__ import annotations

import ftplib
import hashlib
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from gcahng.data.records import SplitRecords
from gcahng.data.sources import DATASETS, ArchiveSpec
from gcahng.errors import DataError, GcahngError, OfflineError

Opener = Callable[..., Any]
"""``urllib.request.urlopen``-like: ``(request, timeout=seconds) -> response`` with
``.status``, ``.read(n)`` and context-manager support."""

CHUNK_BYTES = 1 << 20


class FtpResponse:
    """The data connection of one FTP ``RETR``, read like an ``urlopen`` response; ``status``
    is 206 when the server accepted the ``REST`` offset, else 200 (the whole file)."""

    def __init__(self, ftp: ftplib.FTP, connection: Any, status: int) -> None:
        self._ftp, self._connection, self.status = ftp, connection, status
        self._stream = connection.makefile("rb")

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def __enter__(self) -> FtpResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
        self._connection.close()
        self._ftp.close()  # no QUIT: after a broken transfer the control reply may never come


def ftp_urlopen(request: urllib.request.Request, timeout: float) -> FtpResponse:
    """:data:`Opener` for ``ftp://`` URLs that honours ``Range: bytes=N-`` with the FTP ``REST``
    command (``urllib`` ignores ranges over FTP, so an interrupted download would restart).
    Anonymous login, binary mode, passive data connection. Network failures raise
    ``urllib.error.URLError``; a refusal by the server (e.g. no such file) ``DataError``."""
    url = urllib.parse.urlsplit(request.full_url)
    header = request.get_header("Range") or ""
    offset = int(header.removeprefix("bytes=").rstrip("-")) if header.startswith("bytes=") else 0
    path = urllib.parse.unquote(url.path)
    try:
        ftp = ftplib.FTP(timeout=timeout)
        ftp.connect(url.hostname or "", url.port or ftplib.FTP_PORT)
        ftp.login(urllib.parse.unquote(url.username or "anonymous"), urllib.parse.unquote(url.password or ""))
        ftp.voidcmd("TYPE I")
        status = 200
        if offset:
            try:
                ftp.sendcmd(f"REST {offset}")
                status = 206
            except ftplib.error_perm:  # REST not supported: the whole file follows
                pass
        connection, _ = ftp.ntransfercmd(f"RETR {path}")
    except ftplib.error_perm as err:
        raise DataError(f"{request.full_url}: the FTP server refused: {err}") from None
    except (ftplib.Error, OSError, EOFError) as err:
        raise urllib.error.URLError(err) from None
    return FtpResponse(ftp, connection, status)


def _default_opener(url: str) -> Opener:
    return ftp_urlopen if url.lower().startswith("ftp://") else urllib.request.urlopen


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, spec: ArchiveSpec) -> None:
    size = path.stat().st_size
    if size != spec.size:
        raise DataError(f"{path} has {size:,} bytes, expected {spec.size:,}; delete it and download again")
    if sha256_of(path) != spec.sha256:
        raise DataError(f"{path} does not have the expected SHA-256 {spec.sha256}; delete it and download again")


def fetch(
    spec: ArchiveSpec,
    folder: Path,
    *,
    opener: Opener | None = None,
    timeout: float = 15.0,
    help_text: str = "",
    show_progress: bool = False,
) -> Path:
    """Download ``spec`` into ``folder`` and return the verified file.

    A partial ``<filename>.part`` from an interrupted run is resumed with an HTTP ``Range``
    request, or FTP ``REST`` for ``ftp://`` URLs (restarted when the server ignores it). The
    file is renamed to its final name only after its size and SHA-256 match; a mismatching
    download is deleted. Unreachable hosts raise :class:`~gcahng.errors.OfflineError` within
    ``timeout`` seconds, with ``help_text``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    if target.exists():
        _verify(target, spec)
        return target
    part = folder / (spec.filename + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if offset > spec.size:
        part.unlink()
        offset = 0
    if offset < spec.size:
        _download(spec, part, offset, opener or _default_opener(spec.url), timeout, help_text, show_progress)
    try:
        _verify(part, spec)
    except DataError:
        part.unlink()
        raise DataError(
            f"the download of {spec.url} does not match the expected size {spec.size:,} bytes and "
            f"SHA-256 {spec.sha256}; the corrupt file was deleted, run the command again"
        ) from None
    part.rename(target)
    return target


def _download(
    spec: ArchiveSpec, part: Path, offset: int, opener: Opener, timeout: float, help_text: str, show_progress: bool
) -> None:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(spec.url, headers=headers)
    try:
        response = opener(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise DataError(f"{spec.url}: the server answered HTTP {err.code} {err.reason}.\n{help_text}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise OfflineError(f"cannot download {spec.url} (no network? {reason}).\n{help_text}") from None
    with response:
        status = getattr(response, "status", 200)
        if offset and status != 206:
            offset = 0  # the server ignored the Range request: start over
        written = offset
        with part.open("ab" if offset else "wb") as out, tqdm(
            total=spec.size, initial=offset, unit="B", unit_scale=True, disable=not show_progress, desc=spec.filename
        ) as bar:
            try:
                for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
            except (urllib.error.URLError, OSError) as err:
                raise OfflineError(
                    f"the download of {spec.url} broke off after {written:,} of {spec.size:,} bytes ({err}); "
                    "run the command again to resume"
                ) from None
    if written < spec.size:
        raise OfflineError(
            f"the download of {spec.url} ended after {written:,} of {spec.size:,} bytes; "
            "run the command again to resume"
        )


def _check_member(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: refusing to extract member {name!r}, it points outside the target folder")


def extract(archive: Path, destination: Path) -> None:
    """Extract a tar (any compression) or zip archive into ``destination``.

    Members with absolute paths or ``..`` components, links and device files are refused
    before anything of theirs is written.
    """
    destination.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                _check_member(info.filename, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"{archive}: refusing to extract the symbolic link {info.filename!r}")
                zipped.extract(info, destination)
        return
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                _check_member(member.name, archive)
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"{archive}: refusing to extract {member.name!r}, not a regular file or folder")
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, destination, filter="data")
                else:
                    tar.extract(member, destination)
    except tarfile.TarError as err:
        raise DataError(f"{archive}: not a readable tar or zip archive ({err})") from None


def download_dataset(
    name: str,
    data_root: str | os.PathLike,
    *,
    opener: Opener | None = None,
    timeout: float = 15.0,
    show_progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, SplitRecords]:
    """Make dataset ``name`` ready under ``data_root``: download, verify, extract, validate.

    Does nothing but validate when the dataset is already there. Datasets without a public
    archive raise :class:`~gcahng.errors.DataError` with the official source and layout.
    """
    source = DATASETS.get(name)
    root = Path(data_root).expanduser()
    if source.archive is None:
        raise DataError(f"{name} cannot be downloaded automatically.\n{source.how_to_get}")
    if root.is_dir():
        try:
            records = source.read(root)
        except GcahngError:
            pass
        else:
            log(f"{name} is already present under {root}")
            return records
    archive = fetch(
        source.archive, root, opener=opener, timeout=timeout, help_text=source.how_to_get, show_progress=show_progress
    )
    log(f"verified {archive}; extracting")
    extract(archive, root)
    return source.read(root)
