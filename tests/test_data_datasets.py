"""The dataset readers on miniature, format-exact copies of each official layout."""
from __future__ import annotations

import os

import numpy as np
import pytest
from data_fixtures import (
    make_cars_annos,
    make_cars_devkit,
    make_cars_kaggle_csv,
    make_cub,
    make_folder,
    make_inshop,
    make_sop,
    write_image,
)

from gcahng.data import DATASETS, create_dataset, eval_splits, read_splits
from gcahng.errors import DataError, InputError

CUB_COUNTS = {1: 3, 2: 2, 100: 2, 101: 4, 150: 1, 200: 2}


def _assert_dense(ds) -> None:
    assert ds.labels.dtype == np.int64
    assert set(ds.labels.tolist()) == set(range(ds.num_classes))


def test_registry_holds_the_six_datasets():
    assert set(DATASETS.names()) >= {"cub200", "cars196", "sop", "inshop", "folder", "digits"}
    assert eval_splits("inshop") == ("query", "gallery")
    assert eval_splits("cub200") == ("test",)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_cub_split_by_class_id(tmp_path, newline):
    make_cub(tmp_path, CUB_COUNTS, newline=newline)
    train = create_dataset("cub200", tmp_path, "train")
    test = create_dataset("cub200", tmp_path, "test")
    assert len(train) == 3 + 2 + 2 and len(test) == 4 + 1 + 2
    assert train.class_ids.tolist() == [1, 2, 100] and test.class_ids.tolist() == [101, 150, 200]
    assert train.class_names[0] == "001.Bird_1"
    _assert_dense(train)
    _assert_dense(test)
    assert all(os.path.isfile(p) for p in train.paths + test.paths)
    # the label of every image agrees with the class folder its path names
    for ds in (train, test):
        for path, label in zip(ds.paths, ds.labels, strict=False):
            assert os.path.basename(os.path.dirname(path)) == ds.class_names[label]


def test_cub_accepts_the_inner_folder_as_root(tmp_path):
    base = make_cub(tmp_path, CUB_COUNTS)
    assert create_dataset("cub200", base, "test").paths == create_dataset("cub200", tmp_path, "test").paths


def test_missing_root_names_expected_file_and_download_command(tmp_path):
    with pytest.raises(DataError) as err:
        create_dataset("cub200", tmp_path, "train")
    message = str(err.value)
    assert str(tmp_path / "images.txt") in message
    assert "gcahng data download cub200 --data-root DIR" in message
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        create_dataset("sop", tmp_path / "nowhere", "train")
    with pytest.raises(DataError, match="needs a root"):
        create_dataset("inshop", None, "train")


def test_cub_metadata_errors_name_file_and_line(tmp_path):
    base = make_cub(tmp_path, CUB_COUNTS)
    labels = base / "image_class_labels.txt"
    original = labels.read_text()
    labels.write_text(original.replace("3 1\n", "3 1 7\n"))
    with pytest.raises(DataError, match=r"image_class_labels.txt:3: malformed line"):
        create_dataset("cub200", tmp_path)
    labels.write_text(original.replace("3 1\n", "3 201\n"))
    with pytest.raises(DataError, match=r"image_class_labels.txt:3: class id 201 is out of range"):
        create_dataset("cub200", tmp_path)
    labels.write_text(original.replace("3 1\n", "3 x\n"))
    with pytest.raises(DataError, match=r"image_class_labels.txt:3: class id must be an integer"):
        create_dataset("cub200", tmp_path)
    labels.write_text(original)
    missing = next((base / "images").rglob("*.jpg"))
    missing.unlink()
    with pytest.raises(DataError, match=rf"images.txt:\d+: listed file .*{missing.name} does not exist"):
        create_dataset("cub200", tmp_path)


@pytest.mark.parametrize("bad", ["../outside.jpg", "/etc/passwd", "001.Bird_1/../../../x.jpg"])
def test_paths_leaving_the_root_are_rejected(tmp_path, bad):
    base = make_cub(tmp_path, CUB_COUNTS)
    images = base / "images.txt"
    images.write_text(images.read_text().replace("1 001.Bird_1/Bird_1_0000_1.jpg", f"1 {bad}"))
    with pytest.raises(DataError, match=r"images.txt:1: .*(absolute path|outside the dataset root)"):
        create_dataset("cub200", tmp_path)


def test_symlink_escaping_the_root_is_rejected(tmp_path):
    base = make_cub(tmp_path / "data", CUB_COUNTS)
    secret = write_image(tmp_path / "elsewhere" / "secret.jpg")
    listed = base / "images" / "001.Bird_1" / "Bird_1_0000_1.jpg"
    listed.unlink()
    listed.symlink_to(secret)
    with pytest.raises(DataError, match="symbolic link pointing outside the dataset root"):
        create_dataset("cub200", tmp_path / "data")
    listed.unlink()
    listed.symlink_to(base / "images" / "001.Bird_1" / "Bird_1_0001_2.jpg")  # inside: fine
    assert len(create_dataset("cub200", tmp_path / "data")) == 7


def test_cars_all_images_packaging(tmp_path):
    classes = [1, 1, 2, 98, 99, 99, 150, 196]
    make_cars_annos(tmp_path / "cars196", classes)
    train = create_dataset("cars196", tmp_path, "train")
    test = create_dataset("cars196", tmp_path, "test")
    assert (len(train), len(test)) == (4, 4)
    assert train.class_ids.tolist() == [1, 2, 98] and test.class_ids.tolist() == [99, 150, 196]
    assert train.labels.tolist() == [0, 0, 1, 2] and test.labels.tolist() == [0, 0, 1, 2]
    assert train.class_names[0] == "Make1 Model 2000"
    assert [os.path.basename(p) for p in train.paths] == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]


@pytest.mark.parametrize("nested", [False, True])
def test_cars_devkit_packaging_pools_and_splits_by_class(tmp_path, nested):
    make_cars_devkit(tmp_path, train_classes=[1, 120, 98], test_classes=[99, 2, 2], nested=nested)
    train = create_dataset("cars196", tmp_path, "train")
    test = create_dataset("cars196", tmp_path, "test")
    assert sorted(train.class_ids.tolist()) == [1, 2, 98] and test.class_ids.tolist() == [99, 120]
    assert len(train) == 4 and len(test) == 2
    # cars_train/00001.jpg and cars_test/00001.jpg are different images, both kept
    names = sorted(os.path.relpath(p, tmp_path) for p in train.paths + test.paths)
    assert len(set(names)) == 6
    assert any("cars_test" in n and n.endswith("00001.jpg") for n in names)


def test_cars_devkit_without_test_labels_says_which_file(tmp_path):
    make_cars_devkit(tmp_path, [1], [99])
    (tmp_path / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(DataError, match="cars_test_annos_withlabels.mat"):
        create_dataset("cars196", tmp_path)


def test_cars_kaggle_csv_packaging_pools_and_splits_by_class(tmp_path):
    make_cars_kaggle_csv(tmp_path / "stanford-cars", train_classes=[1, 174, 98], test_classes=[99, 2, 2])
    train = create_dataset("cars196", tmp_path / "stanford-cars", "train")
    test = create_dataset("cars196", tmp_path / "stanford-cars", "test")
    assert sorted(train.class_ids.tolist()) == [1, 2, 98] and test.class_ids.tolist() == [99, 174]
    assert len(train) == 4 and len(test) == 2
    assert test.class_names[1] == "Ram C/V Cargo Van Minivan 2012"
    ram = [p for p in test.paths if "Ram" in p]
    assert len(ram) == 1 and ram[0].endswith("train/Ram C-V Cargo Van Minivan 2012/00002.jpg")
    # train/.../00001.jpg and test/.../00001.jpg are different images, both kept
    assert len(set(train.paths + test.paths)) == 6


@pytest.mark.parametrize(("file", "content", "message"), [
    (
        "anno_test.csv",
        "00001.jpg,1,2,10,12,99\n00002.jpg,1,2,10,12,x\n",
        r"anno_test.csv:2: class 'x' is not an integer",
    ),
    ("anno_test.csv", "00001.jpg,1,2,10,99\n", r"anno_test.csv:1: expected 6 columns"),
    ("anno_train.csv", "00001.jpg,1,2,10,12,197\n", r"anno_train.csv:1: class 197 out of range 1..196"),
    ("anno_test.csv", "00009.jpg,1,2,10,12,99\n", r"00009.jpg"),
    ("names.csv", "only one\n", r"lists 1 class names, expected 196"),
])
def test_cars_kaggle_csv_errors_name_file_and_line(tmp_path, file, content, message):
    make_cars_kaggle_csv(tmp_path, [1, 2], [99])
    (tmp_path / file).write_text(content)
    with pytest.raises(DataError, match=message):
        create_dataset("cars196", tmp_path)


def test_cars_class_out_of_range(tmp_path):
    make_cars_annos(tmp_path, [1, 197])
    with pytest.raises(DataError, match="annotation 2 has class 197, out of range 1..196"):
        create_dataset("cars196", tmp_path)


def test_sop_splits_as_listed(tmp_path):
    make_sop(tmp_path, train={1: 2, 2: 3, 5: 1}, test={11319: 2, 11320: 4}, newline="\r\n")
    train = create_dataset("sop", tmp_path, "train")
    test = create_dataset("sop", tmp_path, "test")
    assert (len(train), train.num_classes, len(test), test.num_classes) == (6, 3, 6, 2)
    assert all(p.endswith(".JPG") for p in train.paths)
    _assert_dense(train)
    assert not set(train.class_ids) & set(test.class_ids)


def test_sop_rejects_classes_in_both_files(tmp_path):
    make_sop(tmp_path, train={1: 2, 7: 1}, test={7: 2})
    with pytest.raises(DataError, match="appear in both"):
        create_dataset("sop", tmp_path)


@pytest.mark.parametrize("official", [True, False])
def test_inshop_three_splits_with_shared_query_gallery_labels(tmp_path, official):
    rows = [(2, "train"), (2, "train"), (9, "train"), (30, "query"), (30, "gallery"), (31, "gallery"),
            (31, "query"), (40, "gallery")]
    make_inshop(tmp_path, rows, official=official)
    splits = {s: create_dataset("inshop", tmp_path, s) for s in ("train", "query", "gallery")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 3, "query": 2, "gallery": 3}
    assert splits["train"].class_names == ["id_00000002", "id_00000009"]
    query, gallery = splits["query"], splits["gallery"]
    assert query.class_names == gallery.class_names == ["id_00000030", "id_00000031", "id_00000040"]
    assert query.labels.tolist() == [0, 1] and gallery.labels.tolist() == [0, 1, 2]
    # the very first data row (line 3) is not lost to the two header lines
    assert "00_1_front.jpg" in splits["train"].paths[0]


def test_inshop_errors(tmp_path):
    partition = make_inshop(tmp_path, [(1, "train"), (2, "query"), (2, "gallery")])
    text = partition.read_text()
    partition.write_text(text.replace("3\n", "4\n", 1))
    with pytest.raises(DataError, match="announces 4 images but lists 3"):
        create_dataset("inshop", tmp_path)
    partition.write_text(text.replace("query", "quary"))
    with pytest.raises(DataError, match=r"list_eval_partition.txt:4: evaluation_status must be one of"):
        create_dataset("inshop", tmp_path)
    partition.write_text(text.replace("gallery", "train"))
    with pytest.raises(DataError, match="both train and query/gallery"):
        create_dataset("inshop", tmp_path)
    with pytest.raises(InputError, match="no split 'test'"):
        create_dataset("inshop", tmp_path, "test")


def test_a_split_without_images_is_an_error_naming_the_file(tmp_path):
    base = make_sop(tmp_path / "sop", train={1: 2, 2: 2}, test={11319: 2})
    (base / "Ebay_train.txt").write_text("image_id class_id super_class_id path\n")
    with pytest.raises(DataError, match=f"{base / 'Ebay_train.txt'}: lists no images of the train split"):
        create_dataset("sop", tmp_path / "sop", "test")
    partition = make_inshop(tmp_path / "inshop", [(1, "train"), (2, "query"), (3, "query")])
    with pytest.raises(DataError, match=f"{partition}: lists no images of the gallery split"):
        create_dataset("inshop", tmp_path / "inshop")
    cub = make_cub(tmp_path / "cub", {1: 2, 2: 2})  # classes 101-200 (test) have no image
    with pytest.raises(DataError, match=f"{cub / 'images.txt'}: lists no images of the test split"):
        create_dataset("cub200", tmp_path / "cub")


def test_folder_halves_by_sorted_name_and_skips_clutter(tmp_path):
    make_folder(tmp_path, {"cat": 3, "ant": 2, "dog": 2, "bee": 4, "eel": 1})
    train = create_dataset("folder", tmp_path, "train")
    test = create_dataset("folder", tmp_path, "test")
    assert train.class_names == ["ant", "bee", "cat"] and test.class_names == ["dog", "eel"]
    assert len(train) == 9 and len(test) == 3
    assert not any(os.path.basename(p).startswith(".") or p.endswith(".txt") for p in train.paths + test.paths)
    _assert_dense(train)


def test_folder_split_file(tmp_path):
    make_folder(tmp_path, {"a b": 2, "c": 2, "d": 1})
    split_file = tmp_path / "splits.txt"
    split_file.write_text("# my split\r\na b test\r\nc train  # comment\r\n")
    train = create_dataset("folder", tmp_path, "train", split_file=split_file)
    test = create_dataset("folder", tmp_path, "test", split_file=split_file)
    assert train.class_names == ["c"] and test.class_names == ["a b"]
    split_file.write_text("c validation\n")
    with pytest.raises(DataError, match=r"splits.txt:1: split must be 'train' or 'test'"):
        create_dataset("folder", tmp_path, split_file=split_file)
    split_file.write_text("zebra train\n")
    with pytest.raises(DataError, match=r"splits.txt:1: class folder .*zebra does not exist"):
        create_dataset("folder", tmp_path, split_file=split_file)


def test_folder_class_folder_linking_outside_is_rejected(tmp_path):
    make_folder(tmp_path / "data", {"a": 1, "b": 1})
    make_folder(tmp_path / "other", {"c": 1})
    (tmp_path / "data" / "c").symlink_to(tmp_path / "other" / "c")
    with pytest.raises(DataError, match="links outside the dataset root"):
        create_dataset("folder", tmp_path / "data")


def test_folder_image_link_loop_is_a_listed_problem(tmp_path):
    make_folder(tmp_path / "data", {"a": 2, "b": 2})
    loop = tmp_path / "data" / "a" / "loop.jpg"
    loop.symlink_to(loop)  # opening it fails with ELOOP
    with pytest.raises(DataError, match=r"loop.jpg cannot be opened \(Too many levels of symbolic links\)"):
        create_dataset("folder", tmp_path / "data")


def test_digits_default_set():
    train = create_dataset("digits", split="train")
    test = create_dataset("digits", split="test")
    assert len(train) + len(test) == 1797
    assert train.class_names == ["0", "1", "2", "3", "4"] and test.class_names == ["5", "6", "7", "8", "9"]
    image = train.load_image(0)
    assert image.mode == "RGB" and image.size == (32, 32)
    pixels = np.asarray(image)
    assert np.array_equal(pixels[..., 0], pixels[..., 2]) and pixels.max() > 200
    assert train.paths[0].startswith("digits/")


def test_validation_holdout_is_class_disjoint_and_seeded(tmp_path):
    make_sop(tmp_path, train={c: 2 for c in range(1, 21)}, test={100: 2, 101: 2})
    full = create_dataset("sop", tmp_path, "train")
    train = create_dataset("sop", tmp_path, "train", val_fraction=0.25, val_seed=3)
    val = create_dataset("sop", tmp_path, "val", val_fraction=0.25, val_seed=3)
    assert val.num_classes == 5 and train.num_classes == 15
    assert set(train.class_ids).isdisjoint(val.class_ids)
    assert set(train.class_ids) | set(val.class_ids) == set(full.class_ids)
    assert sorted(train.paths + val.paths) == sorted(full.paths)
    _assert_dense(val)
    again = create_dataset("sop", tmp_path, "val", val_count=5, val_seed=3)
    assert again.class_ids.tolist() == val.class_ids.tolist()
    other = create_dataset("sop", tmp_path, "val", val_count=5, val_seed=4)
    assert other.class_ids.tolist() != val.class_ids.tolist()
    assert create_dataset("sop", tmp_path, "test", val_count=5).num_classes == 2
    with pytest.raises(InputError, match="cannot hold out 20"):
        create_dataset("sop", tmp_path, "val", val_count=20)
    with pytest.raises(InputError, match="val_fraction or val_count"):
        create_dataset("sop", tmp_path, "val")
    splits = read_splits("sop", tmp_path, val_count=2)
    assert set(splits) == {"train", "val", "test"}


def test_inshop_high_resolution_folder_is_found_by_prefix(tmp_path):
    make_inshop(tmp_path, [(1, "train"), (2, "query"), (2, "gallery")])
    (tmp_path / "Img" / "img").rename(tmp_path / "Img" / "img_highres")
    query = create_dataset("inshop", tmp_path, "query")
    assert "/Img/img_highres/WOMEN/" in query.paths[0] and os.path.isfile(query.paths[0])
