"""The ``gcahng data`` commands (no network: urlopen is replaced)."""
from __future__ import annotations

import urllib.error
import urllib.request

from click.testing import CliRunner
from data_fixtures import bomb_jpeg_bytes, bomb_png_bytes, make_cub, make_folder, make_inshop, make_sop

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


def test_check_reports_decompression_bombs_like_unreadable_images(tmp_path):
    base = make_cub(tmp_path, {1: 2, 2: 2, 150: 2})
    images = sorted((base / "images").rglob("*.jpg"))
    images[0].write_bytes(bomb_jpeg_bytes())
    images[1].write_bytes(bomb_png_bytes())  # PNG data named .jpg
    for extra in ([], ["--header-only"]):
        result = CliRunner().invoke(cli, ["data", "check", "cub200", "--data-root", str(tmp_path), *extra])
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # not a DecompressionBombError
        for bomb in images[:2]:
            assert f"error: {bomb}: refused as a possible decompression bomb" in result.output
        assert "2 error(s) found in cub200" in result.output


def test_check_and_fit_refuse_a_split_without_images(tmp_path):
    base = make_sop(tmp_path, train={1: 2, 2: 2}, test={11319: 2, 11320: 2})
    (base / "Ebay_train.txt").write_text("image_id class_id super_class_id path\n")
    message = f"{base / 'Ebay_train.txt'}: lists no images of the train split"
    result = CliRunner().invoke(cli, ["data", "check", "sop", "--data-root", str(tmp_path)])
    assert result.exit_code == 1 and f"error: {message}" in result.output
    result = CliRunner().invoke(cli, ["fit", "sop", "--data-root", str(tmp_path), "--backbone", "tiny_cnn",
                                      "--no-pretrained", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and f"Error: {message}" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_check_names_inshop_items_with_queries_but_no_gallery_image(tmp_path):
    make_inshop(tmp_path, [(1, "train"), (2, "train"), (5, "query"), (5, "gallery"), (7, "query"), (7, "query"),
                           (8, "gallery"), (9, "query")])
    result = CliRunner().invoke(cli, ["data", "check", "inshop", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert ("warning: 2 item(s) have query images but no gallery image: id_00000007, id_00000009 "
            "(their 3 queries are left out of Recall@K)") in result.output
