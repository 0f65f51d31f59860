"""Stanford Online Products from ``Ebay_train.txt`` / ``Ebay_test.txt`` (splits as given)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gcahng.data.files import locate, safe_join, verify_files
from gcahng.data.metadata import header_lines, parse_int, read_rows
from gcahng.data.records import SplitRecords, require_images
from gcahng.data.sources.base import DATASETS, ArchiveSpec, DatasetSource
from gcahng.errors import DataError

HOW_TO_GET = (
    "Get Stanford Online Products with `gcahng data download sop --data-root DIR`, or download "
    "Stanford_Online_Products.zip from https://cvgl.stanford.edu/projects/lifted_struct/ and extract it "
    "into DIR. Expected layout: DIR/Stanford_Online_Products/{Ebay_train.txt, Ebay_test.txt, "
    "bicycle_final/*.JPG, ...}."
)
HEADER = "image_id class_id super_class_id path"


def _read_list(base: Path, name: str) -> tuple[list[str], list[int], list[str]]:
    path = base / name
    first = header_lines(path, 1)
    skip = 1 if first and first[0].split() and not first[0].split()[0].isdigit() else 0
    if skip and first[0].split() != HEADER.split():
        raise DataError(f"{path}:1: expected the header {HEADER!r}, got {first[0]!r}")
    paths, classes, where = [], [], []
    for line, (_, cid, _, rel) in read_rows(path, fields=4, skip=skip):
        classes.append(parse_int(cid, path, line, "class_id"))
        where.append(f"{path}:{line}")
        paths.append(safe_join(base, rel, where[-1]))
    return paths, classes, where


def read_sop(root: Path) -> dict[str, SplitRecords]:
    """Train and test exactly as listed; class ids are SOP's own (train 1..11318, test 11319..22634)."""
    base = locate(root, "Ebay_train.txt", ["Stanford_Online_Products"], HOW_TO_GET)
    if not (base / "Ebay_test.txt").is_file():
        raise DataError(f"expected {base / 'Ebay_test.txt'}, but it does not exist.\n{HOW_TO_GET}")
    splits = {}
    for split, name in (("train", "Ebay_train.txt"), ("test", "Ebay_test.txt")):
        paths, classes, where = _read_list(base, name)
        verify_files(base, paths, where)
        keys = np.asarray(classes, dtype=np.int64)
        records = SplitRecords(paths, keys, {int(k): f"product {int(k)}" for k in np.unique(keys)})
        splits[split] = require_images(records, split, str(base / name))
    shared = set(splits["train"].class_names) & set(splits["test"].class_names)
    if shared:
        raise DataError(
            f"{len(shared)} class_id(s) appear in both {base / 'Ebay_train.txt'} and {base / 'Ebay_test.txt'} "
            f"(e.g. {sorted(shared)[:5]}); the DML splits must be class-disjoint"
        )
    return splits


DATASETS.register("sop")(
    DatasetSource(
        name="sop",
        read=read_sop,
        splits=("train", "test"),
        eval_splits=("test",),
        how_to_get=HOW_TO_GET,
        expected={"train": (11318, 59551), "test": (11316, 60502)},
        archive=ArchiveSpec(
            url="ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
            filename="Stanford_Online_Products.zip",
            size=3_083_860_082,
            sha256="b04fa78210e69fab050ce73939550e1cd0f96890bdd98ec9fee732c3b756ef48",
        ),
    )
)
