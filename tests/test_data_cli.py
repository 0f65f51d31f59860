"""The ``gcahng data`` commands (no network: urlopen is replaced)."""
from __future__ import annotations

import urllib.error
import urllib.request

from click.testing import CliRunner
from data_fixtures import make_cub, make_folder

from gcahng.cli.main import cli


def test_download_offline_fails_with_the_official_source(tmp_path, monkeypatch):
    def offline(request, timeout):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    result = CliRunner().invoke(cli, ["data", "download", "sop", "--data-root", str(tmp_path)])
    assert result.exit_code != 0
    assert "Error: cannot download ftp://cs.stanford.edu" in result.output
    assert "cvgl.stanford.edu/projects/lifted_struct" in result.output


def test_download_of_a_manual_dataset_prints_the_layout(tmp_path):
    result = CliRunner().invoke(cli, ["data", "download", "cars196", "--data-root", str(tmp_path)])
    assert result.exit_code != 0 and "cars_test_annos_withlabels.mat" in result.output


def test_check_prints_counts_and_exits_zero_on_a_clean_copy(tmp_path):
    make_cub(tmp_path, {1: 2, 2: 1, 150: 2})
    result = CliRunner().invoke(cli, ["data", "check", "cub200", "--data-root", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "train: 2 classes, 3 images" in result.output and "test: 1 classes, 2 images" in result.output
    assert "the official cub200 split has 100 / 5,864" in result.output  # miniature copy: count warning


def test_check_lists_every_problem_and_exits_non_zero(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 2, "c": 2})
    (tmp_path / "a" / "img0.jpg").write_bytes(b"")
    (tmp_path / "a" / "img1.png").write_bytes((tmp_path / "a" / "img2.jpg").read_bytes())  # JPEG named .png
    (tmp_path / "c" / "img0.jpg").write_bytes(b"\xff\xd8\xffgarbage")
    from PIL import Image

    Image.new("L", (20, 20)).save(tmp_path / "b" / "img0.jpg")
    result = CliRunner().invoke(cli, ["data", "check", "folder", "--data-root", str(tmp_path)])
    assert result.exit_code == 1
    assert "img0.jpg: empty file" in result.output
    assert "c/img0.jpg: cannot read image" in result.output
    assert "img1.png: holds JPEG data but is named '.png'" in result.output
    assert "1 L" in result.output
    assert "2 error(s) found in folder" in result.output


def test_check_reports_metadata_errors(tmp_path):
    result = CliRunner().invoke(cli, ["data", "check", "sop", "--data-root", str(tmp_path)])
    assert result.exit_code == 1 and "Ebay_train.txt" in result.output


def test_check_of_the_embedded_digits():
    result = CliRunner().invoke(cli, ["data", "check", "digits"])
    assert result.exit_code == 0
    assert "train: 5 classes, 901 images" in result.output and "test: 5 classes, 896 images" in result.output
    assert "warning:" not in result.output and "no errors (0 warning(s))" in result.output
