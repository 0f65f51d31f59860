"""Builders of miniature, format-exact copies of the dataset layouts (for tests/test_data_*.py).

Each builder writes real metadata files (and real, tiny JPEGs) under a temporary folder and
returns what it wrote, so tests can compare the readers' output with the truth.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (20, 16)) -> bytes:
    """A small real JPEG whose pixels depend on ``seed``."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


_JPEG = jpeg_bytes()


def bomb_png_bytes(width: int = 30000, height: int = 30000) -> bytes:
    """A 65-byte PNG whose IHDR declares ``width x height`` RGB pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def bomb_jpeg_bytes(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny baseline JPEG whose SOF0 frame header is rewritten to declare ``width x height`` pixels."""
    data = bytearray(jpeg_bytes(0, (8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def write_image(path: Path, data: bytes = _JPEG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_cub(root: Path, per_class: dict[int, int], newline: str = "\n") -> Path:
    """``root/CUB_200_2011`` with all 200 classes named and ``per_class[c]`` images of class c."""
    base = root / "CUB_200_2011"
    names = {c: f"{c:03d}.Bird_{c}" for c in range(1, 201)}
    images, labels = [], []
    image_id = 0
    for c, count in sorted(per_class.items()):
        for k in range(count):
            image_id += 1
            rel = f"{names[c]}/Bird_{c}_{k:04d}_{image_id}.jpg"
            write_image(base / "images" / rel)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c}")
    base.mkdir(parents=True, exist_ok=True)
    (root / "attributes.txt").write_text("1 has_bill_shape::curved\n")  # the stray top-level file
    (base / "classes.txt").write_text(newline.join(f"{c} {n}" for c, n in names.items()) + newline)
    (base / "images.txt").write_text(newline.join(images) + newline)
    (base / "image_class_labels.txt").write_text(newline.join(labels) + newline)
    (base / "train_test_split.txt").write_text(newline.join(f"{i} {i % 2}" for i in range(1, image_id + 1)) + newline)
    return base


def _struct(rows: list[dict], fields: list[str]) -> np.ndarray:
    """A 1 x N MATLAB struct array with ``fields`` in this order."""
    array = np.empty((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        for f in fields:
            array[0, i][f] = row[f]
    return array


def class_name_cells(count: int = 196) -> np.ndarray:
    cells = np.empty((1, count), dtype=object)
    for i in range(count):
        cells[0, i] = f"Make{i + 1} Model {2000 + i % 13}"
    return cells


def make_cars_annos(root: Path, classes: list[int]) -> Path:
    """``root/cars_annos.mat`` + ``root/car_ims/NNNNNN.jpg``, one image per entry of ``classes``."""
    rows = []
    for i, c in enumerate(classes, start=1):
        rel = f"car_ims/{i:06d}.jpg"
        write_image(root / rel)
        rows.append({"relative_im_path": rel, "bbox_x1": 1, "bbox_y1": 2, "bbox_x2": 10, "bbox_y2": 12,
                     "class": c, "test": i % 2})
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    scipy.io.savemat(root / "cars_annos.mat", {"annotations": _struct(rows, fields), "class_names": class_name_cells()})
    return root


def make_cars_devkit(root: Path, train_classes: list[int], test_classes: list[int], nested: bool = False) -> Path:
    """The devkit packaging (optionally Kaggle's doubled image folders); file names collide on purpose."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    (root / "devkit").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "devkit" / "cars_meta.mat", {"class_names": class_name_cells()})
    for folder, classes, mat in (("cars_train", train_classes, root / "devkit" / "cars_train_annos.mat"),
                                 ("cars_test", test_classes, root / "cars_test_annos_withlabels.mat")):
        rows = []
        for i, c in enumerate(classes, start=1):
            fname = f"{i:05d}.jpg"
            write_image(root / folder / (folder if nested else "") / fname, jpeg_bytes(i + 100 * len(folder)))
            rows.append({"bbox_x1": 1, "bbox_y1": 2, "bbox_x2": 10, "bbox_y2": 12, "class": c, "fname": fname})
        scipy.io.savemat(mat, {"annotations": _struct(rows, fields)})
    unlabelled = [{"bbox_x1": 1, "bbox_y1": 2, "bbox_x2": 3, "bbox_y2": 4, "fname": "00001.jpg"}]
    scipy.io.savemat(root / "devkit" / "cars_test_annos.mat",
                     {"annotations": _struct(unlabelled, ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "fname"])})
    return root


def make_cars_kaggle_csv(root: Path, train_classes: list[int], test_classes: list[int]) -> Path:
    """Kaggle's jutrera packaging: names.csv, anno_{train,test}.csv and
    car_data/car_data/{train,test}/<class name, '/' as '-'>/<file>; class 174 has a '/'."""
    names = [str(name) for name in class_name_cells()[0]]
    names[173] = "Ram C/V Cargo Van Minivan 2012"
    (root / "names.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "names.csv").write_text("".join(f"{n}\n" for n in names))
    for split, classes in (("train", train_classes), ("test", test_classes)):
        lines = []
        for i, c in enumerate(classes, start=1):
            fname = f"{i:05d}.jpg"
            write_image(root / "car_data" / "car_data" / split / names[c - 1].replace("/", "-") / fname,
                        jpeg_bytes(i + (0 if split == "train" else 500)))
            lines.append(f"{fname},1,2,10,12,{c}\n")
        (root / f"anno_{split}.csv").write_text("".join(lines))
    return root


def make_sop(root: Path, train: dict[int, int], test: dict[int, int], newline: str = "\n") -> Path:
    """``root/Stanford_Online_Products`` with ``{class_id: image count}`` per split, ``.JPG`` files."""
    base = root / "Stanford_Online_Products"
    categories = ["bicycle_final", "cabinet_final", "chair_final"]
    image_id = 0
    for name, classes in (("Ebay_train.txt", train), ("Ebay_test.txt", test)):
        lines = ["image_id class_id super_class_id path"]
        for c, count in sorted(classes.items()):
            super_id = c % 3 + 1
            for k in range(count):
                image_id += 1
                rel = f"{categories[super_id - 1]}/{111085122000 + c}_{k}.JPG"
                write_image(base / rel)
                lines.append(f"{image_id} {c} {super_id} {rel}")
        base.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(newline.join(lines) + newline)
    return base


def make_inshop(root: Path, rows: list[tuple[int, str]], official: bool = True) -> Path:
    """In-Shop with ``(item number, status)`` rows; ``official`` puts the partition under ``Eval/``
    and images under ``Img/img/`` (else both directly under ``root``, as GCA-HNG does)."""
    image_base = root / "Img" if official else root
    partition = (root / "Eval" if official else root) / "list_eval_partition.txt"
    lines = [str(len(rows)), "image_name item_id evaluation_status"]
    for k, (item, status) in enumerate(rows):
        name = f"img/WOMEN/Dresses/id_{item:08d}/{k:02d}_1_front.jpg"
        write_image(image_base / name)
        lines.append(f"{name:<60}id_{item:08d}         {status}")
    partition.parent.mkdir(parents=True, exist_ok=True)
    partition.write_text("\n".join(lines) + "\n")
    return partition


def make_folder(root: Path, per_class: dict[str, int]) -> Path:
    """One subfolder per class with real JPEG/PNG files, plus macOS and hidden clutter."""
    for name, count in per_class.items():
        for k in range(count):
            ending = ".png" if k % 2 else ".jpg"
            path = root / name / f"img{k}{ending}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 10), (k * 20 % 256, 0, 0)).save(path)
        (root / name / "._img0.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (root / name / ".DS_Store").write_bytes(b"\x00")
        (root / name / "notes.txt").write_text("not an image")
    return root
