"""gcahng data download: checksum, resume, safe extraction, offline behaviour. No network used:
the opener is replaced by an in-memory fake server."""
from __future__ import annotations

import dataclasses
import ftplib
import hashlib
import io
import tarfile
import urllib.error
import zipfile

import pytest
from data_fixtures import make_cub

from gcahng.data import DATASETS, ArchiveSpec
from gcahng.data.download import download_dataset, extract, fetch
from gcahng.errors import DataError, OfflineError


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, status: int, fail_after: int | None) -> None:
        super().__init__(data)
        self.status = status
        self.fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size if self.fail_after is None else min(size, self.fail_after - self.tell()))


class FakeServer:
    """``urlopen`` stand-in serving ``payload``; records the Range header of each request."""

    def __init__(self, payload: bytes, honour_range: bool = True, fail_after: int | None = None) -> None:
        self.payload = payload
        self.honour_range = honour_range
        self.fail_after = fail_after
        self.ranges: list[str | None] = []

    def __call__(self, request, timeout):
        assert timeout is not None and timeout <= 60
        header = request.get_header("Range")
        self.ranges.append(header)
        if header and self.honour_range:
            start = int(header.split("=")[1].rstrip("-"))
            return FakeResponse(self.payload[start:], 206, self.fail_after)
        return FakeResponse(self.payload, 200, self.fail_after)


def _offline(request, timeout):
    raise urllib.error.URLError(OSError(-2, "Name or service not known"))


def _spec(payload: bytes, name: str = "CUB_200_2011.tgz") -> ArchiveSpec:
    return ArchiveSpec(f"https://example.invalid/{name}", name, len(payload), hashlib.sha256(payload).hexdigest())


@pytest.fixture
def cub_archive(tmp_path_factory) -> bytes:
    source = tmp_path_factory.mktemp("source")
    make_cub(source, {1: 2, 2: 1, 101: 2})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source / "CUB_200_2011", arcname="CUB_200_2011")
        tar.add(source / "attributes.txt", arcname="attributes.txt")
    return buffer.getvalue()


@pytest.fixture
def fake_cub(cub_archive):
    source = DATASETS.get("cub200")
    with DATASETS.registered("cub200", dataclasses.replace(source, archive=_spec(cub_archive)), overwrite=True):
        yield cub_archive


def test_download_verifies_extracts_and_validates(tmp_path, fake_cub):
    server = FakeServer(fake_cub)
    records = download_dataset("cub200", tmp_path / "data", opener=server)
    assert server.ranges == [None]
    assert (len(records["train"].paths), len(records["test"].paths)) == (3, 2)
    assert (tmp_path / "data" / "CUB_200_2011" / "images.txt").is_file()
    assert (tmp_path / "data" / "CUB_200_2011.tgz").read_bytes() == fake_cub
    again = download_dataset("cub200", tmp_path / "data", opener=_offline)  # present: no network needed
    assert len(again["test"].paths) == 2


@pytest.mark.parametrize("honour_range", [True, False])
def test_partial_download_is_resumed(tmp_path, fake_cub, honour_range):
    (tmp_path / "CUB_200_2011.tgz.part").write_bytes(fake_cub[:1000])
    server = FakeServer(fake_cub, honour_range=honour_range)
    path = fetch(_spec(fake_cub), tmp_path, opener=server)
    assert server.ranges == ["bytes=1000-"]
    assert path.read_bytes() == fake_cub and not (tmp_path / "CUB_200_2011.tgz.part").exists()


def test_interrupted_download_keeps_the_part_and_resumes(tmp_path, fake_cub):
    with pytest.raises(OfflineError, match="broke off after 700 .* run the command again to resume"):
        fetch(_spec(fake_cub), tmp_path, opener=FakeServer(fake_cub, fail_after=700))
    assert (tmp_path / "CUB_200_2011.tgz.part").stat().st_size == 700
    server = FakeServer(fake_cub)
    assert fetch(_spec(fake_cub), tmp_path, opener=server).read_bytes() == fake_cub
    assert server.ranges == ["bytes=700-"]


def test_checksum_mismatch_deletes_the_download(tmp_path, fake_cub):
    corrupt = bytearray(fake_cub)
    corrupt[100] ^= 0xFF
    with pytest.raises(DataError, match="does not match the expected size .* SHA-256"):
        fetch(_spec(fake_cub), tmp_path, opener=FakeServer(bytes(corrupt)))
    assert list(tmp_path.iterdir()) == []


def test_offline_fails_fast_with_the_manual_instructions(tmp_path, fake_cub):
    with pytest.raises(OfflineError) as err:
        download_dataset("cub200", tmp_path, opener=_offline)
    assert "no network" in str(err.value) and "data.caltech.edu/records/65de6-vp158" in str(err.value)
    assert "CUB_200_2011/{images.txt" in str(err.value)


def test_datasets_without_public_archive_explain_where_to_get_them(tmp_path):
    with pytest.raises(DataError, match="cannot be downloaded automatically.*cars_annos.mat"):
        download_dataset("cars196", tmp_path, opener=_offline)
    with pytest.raises(DataError, match="list_eval_partition.txt"):
        download_dataset("inshop", tmp_path, opener=_offline)


def _tar_with(member: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 1
        tar.addfile(ok, io.BytesIO(b"y"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"])
def test_extraction_refuses_members_leaving_the_target(tmp_path, name):
    archive = tmp_path / "bad.tar"
    archive.write_bytes(_tar_with(tarfile.TarInfo(name)))
    with pytest.raises(DataError, match="points outside the target folder"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_extraction_refuses_links_in_tar_and_zip(tmp_path):
    link = tarfile.TarInfo("link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    (tmp_path / "link.tar").write_bytes(_tar_with(link))
    with pytest.raises(DataError, match="not a regular file or folder"):
        extract(tmp_path / "link.tar", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zipped:
        zipped.writestr("../evil.txt", "x")
    with pytest.raises(DataError, match="points outside"):
        extract(tmp_path / "bad.zip", tmp_path / "out")
    info = zipfile.ZipInfo("sym")
    info.external_attr = 0o120777 << 16
    with zipfile.ZipFile(tmp_path / "sym.zip", "w") as zipped:
        zipped.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        extract(tmp_path / "sym.zip", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as zipped:
        zipped.writestr("Stanford_Online_Products/Ebay_train.txt", "image_id class_id super_class_id path\n")
    extract(tmp_path / "good.zip", tmp_path / "out")
    assert (tmp_path / "out" / "Stanford_Online_Products" / "Ebay_train.txt").is_file()


class FakeFTP:
    """``ftplib.FTP`` stand-in serving ``payload`` for ``RETR /pub/<name>``; it records the
    ``REST`` offsets, and its data connection breaks after ``fail_after`` bytes once."""

    payload = b""
    supports_rest = True
    fail_after: int | None = None
    rests: list[int] = []

    def __init__(self, timeout: float) -> None:
        assert timeout is not None and timeout <= 60
        self.offset = 0

    def connect(self, host: str, port: int) -> None:
        assert (host, port) == ("ftp.example.invalid", 21)

    def login(self, user: str, password: str) -> None:
        assert user == "anonymous"

    def voidcmd(self, command: str) -> None:
        assert command == "TYPE I"

    def sendcmd(self, command: str) -> str:
        if not self.supports_rest:
            raise ftplib.error_perm("502 Command not implemented")
        self.offset = int(command.split()[1])
        type(self).rests.append(self.offset)
        return "350 Restarting"

    def ntransfercmd(self, command: str):
        if command != "RETR /pub/archive.zip":
            raise ftplib.error_perm("550 No such file")
        data = self.payload[self.offset:]
        fail_after, type(self).fail_after = type(self).fail_after, None
        return FakeDataConnection(data, fail_after), len(data)

    def close(self) -> None:
        pass


class FakeDataConnection:
    def __init__(self, data: bytes, fail_after: int | None) -> None:
        self.data, self.fail_after = data, fail_after

    def makefile(self, mode: str) -> FakeResponse:
        assert mode == "rb"
        return FakeResponse(self.data, 0, self.fail_after)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_ftp(monkeypatch):
    monkeypatch.setattr(ftplib, "FTP", FakeFTP)
    FakeFTP.payload = bytes(range(256)) * 40_000  # 10 MB: several read chunks
    FakeFTP.supports_rest, FakeFTP.fail_after, FakeFTP.rests = True, None, []
    return FakeFTP


def _ftp_spec(payload: bytes, path: str = "/pub/archive.zip") -> ArchiveSpec:
    return ArchiveSpec(f"ftp://ftp.example.invalid{path}", "archive.zip", len(payload),
                       hashlib.sha256(payload).hexdigest())


@pytest.mark.parametrize("supports_rest", [True, False])
def test_interrupted_ftp_download_resumes_with_rest(tmp_path, fake_ftp, supports_rest):
    fake_ftp.supports_rest = supports_rest
    fake_ftp.fail_after = 3_000_000
    spec = _ftp_spec(fake_ftp.payload)
    with pytest.raises(OfflineError, match="broke off after 3,000,000 of 10,240,000 bytes"):
        fetch(spec, tmp_path)
    assert (tmp_path / "archive.zip.part").stat().st_size == 3_000_000
    path = fetch(spec, tmp_path)
    assert path.read_bytes() == fake_ftp.payload and not (tmp_path / "archive.zip.part").exists()
    assert fake_ftp.rests == ([3_000_000] if supports_rest else [])


def test_ftp_refusal_is_a_data_error_naming_the_url(tmp_path, fake_ftp):
    spec = _ftp_spec(fake_ftp.payload, path="/pub/missing.zip")
    with pytest.raises(DataError, match=r"ftp://ftp.example.invalid/pub/missing.zip: the FTP server refused: 550"):
        fetch(spec, tmp_path)


def test_unreachable_ftp_host_is_offline_error(tmp_path, fake_ftp, monkeypatch):
    def refuse(self, host: str, port: int) -> None:
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr(FakeFTP, "connect", refuse)
    with pytest.raises(OfflineError, match=r"cannot download ftp://ftp.example.invalid/pub/archive.zip \(no network\?"):
        fetch(_ftp_spec(fake_ftp.payload), tmp_path, help_text="get it by hand")
