"""CUB-200-2011 as extracted from ``CUB_200_2011.tgz``; DML split: classes 1-100 / 101-200."""
from __future__ import annotations

from pathlib import Path

from gcahng.data.files import locate, safe_join, verify_files
from gcahng.data.metadata import parse_int, read_rows
from gcahng.data.records import SplitRecords, split_by_class
from gcahng.data.sources.base import DATASETS, ArchiveSpec, DatasetSource
from gcahng.errors import DataError

HOW_TO_GET = (
    "Get CUB-200-2011 with `gcahng data download cub200 --data-root DIR`, or download "
    "CUB_200_2011.tgz from https://data.caltech.edu/records/65de6-vp158 and extract it into DIR. "
    "Expected layout: DIR/CUB_200_2011/{images.txt, image_class_labels.txt, classes.txt, images/NNN.Name/*.jpg}."
)
TRAIN_CLASSES = set(range(1, 101))


def read_cub200(root: Path) -> dict[str, SplitRecords]:
    """Paths from ``images.txt``, class ids from ``image_class_labels.txt``, names from ``classes.txt``."""
    base = locate(root, "images.txt", ["CUB_200_2011"], HOW_TO_GET)
    for required in ("image_class_labels.txt", "classes.txt"):
        if not (base / required).is_file():
            raise DataError(f"expected {base / required}, but it does not exist.\n{HOW_TO_GET}")
    names_file, images_file, labels_file = base / "classes.txt", base / "images.txt", base / "image_class_labels.txt"
    class_names: dict[int, str] = {}
    for line, (cid, cname) in read_rows(names_file, fields=2, last_field_may_have_spaces=True):
        class_names[parse_int(cid, names_file, line, "class id")] = cname.strip()
    images: dict[int, tuple[str, str]] = {}
    for line, (iid, rel) in read_rows(images_file, fields=2, last_field_may_have_spaces=True):
        image_id = parse_int(iid, images_file, line, "image id")
        if image_id in images:
            raise DataError(f"{images_file}:{line}: image id {image_id} is listed twice")
        where = f"{images_file}:{line}"
        images[image_id] = (safe_join(base / "images", rel.strip(), where), where)
    labels: dict[int, int] = {}
    for line, (iid, cid) in read_rows(labels_file, fields=2):
        image_id = parse_int(iid, labels_file, line, "image id")
        class_id = parse_int(cid, labels_file, line, "class id")
        if image_id not in images:
            raise DataError(f"{labels_file}:{line}: image id {image_id} is not listed in {images_file}")
        if class_id not in class_names:
            raise DataError(
                f"{labels_file}:{line}: class id {class_id} is out of range (not listed in {names_file})"
            )
        labels[image_id] = class_id
    unlabelled = sorted(set(images) - set(labels))
    if unlabelled:
        raise DataError(
            f"{len(unlabelled)} image id(s) of {images_file} have no line in {labels_file}, e.g. {unlabelled[:5]}"
        )
    ids = sorted(images)
    paths = [images[i][0] for i in ids]
    verify_files(base, paths, [images[i][1] for i in ids])
    return split_by_class(paths, [labels[i] for i in ids], class_names, TRAIN_CLASSES, str(images_file))


DATASETS.register("cub200")(
    DatasetSource(
        name="cub200",
        read=read_cub200,
        splits=("train", "test"),
        eval_splits=("test",),
        how_to_get=HOW_TO_GET,
        expected={"train": (100, 5864), "test": (100, 5924)},
        archive=ArchiveSpec(
            url="https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
            filename="CUB_200_2011.tgz",
            size=1_150_585_339,
            sha256="0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081",
        ),
    )
)
