"""In-Shop Clothes Retrieval (DeepFashion) from ``Eval/list_eval_partition.txt``.

Splits ``train``, ``query`` and ``gallery`` as listed. Class ids are the item numbers
(``id_00000002`` -> 2); query and gallery share one label space (their items together), so
their dense labels agree.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gcahng.data.files import safe_join, verify_files
from gcahng.data.metadata import header_lines, parse_int, read_rows
from gcahng.data.records import SplitRecords, require_images
from gcahng.data.sources.base import DATASETS, DatasetSource
from gcahng.errors import DataError

HOW_TO_GET = (
    "In-Shop cannot be downloaded automatically (Google Drive, behind a form). Get Img/img.zip and "
    "Eval/list_eval_partition.txt from http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html "
    "and arrange them as DIR/Eval/list_eval_partition.txt + DIR/Img/img/{MEN,WOMEN}/... "
    "(DIR/list_eval_partition.txt + DIR/img/... is accepted too)."
)
PARTITION = "list_eval_partition.txt"
HEADER = "image_name item_id evaluation_status"
STATUSES = ("train", "query", "gallery")
_PLACES = ("", "Eval", "In-shop Clothes Retrieval Benchmark", "In-shop Clothes Retrieval Benchmark/Eval",
           "Inshop_Clothes", "Inshop_Clothes/Eval", "IN_SHOP")
_ITEM = re.compile(r"id_(\d+)")


def _find_partition(root: Path) -> Path:
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder.\n{HOW_TO_GET}")
    for place in _PLACES:
        if (root / place / PARTITION).is_file():
            return root / place / PARTITION
    raise DataError(
        f"expected {root / 'Eval' / PARTITION} (or {root / PARTITION}), but it does not exist.\n{HOW_TO_GET}"
    )


def _image_base(dataset_dir: Path) -> tuple[Path, str | None]:
    """The folder the listed ``img/...`` names are relative to, and a replacement for the
    ``img/`` prefix when only the high-resolution ``img_highres/`` folder is present."""
    for base in (dataset_dir / "Img", dataset_dir):
        if (base / "img").is_dir():
            return base, None
    for base in (dataset_dir / "Img", dataset_dir):
        if (base / "img_highres").is_dir():
            return base, "img_highres/"
    raise DataError(f"expected the image folder {dataset_dir / 'Img' / 'img'} (or {dataset_dir / 'img'}), "
                    f"but it does not exist.\n{HOW_TO_GET}")


def read_inshop(root: Path) -> dict[str, SplitRecords]:
    """Parse the two header lines (count, column names) and the rows; check count and disjointness."""
    partition = _find_partition(Path(root).expanduser())
    dataset_dir = partition.parent.parent if partition.parent.name == "Eval" else partition.parent
    base, new_prefix = _image_base(dataset_dir)
    head = header_lines(partition, 2)
    if len(head) < 2 or not head[0].isdigit():
        raise DataError(f"{partition}:1: expected the number of images, got {head[0] if head else ''!r}")
    if head[1].split() != HEADER.split():
        raise DataError(f"{partition}:2: expected the column names {HEADER!r}, got {head[1]!r}")
    rows: dict[str, tuple[list[str], list[int], list[str]]] = {s: ([], [], []) for s in STATUSES}
    for line, (name, item, status) in read_rows(partition, fields=3, skip=2):
        where = f"{partition}:{line}"
        if status not in rows:
            raise DataError(f"{where}: evaluation_status must be one of {', '.join(STATUSES)}, got {status!r}")
        match = _ITEM.fullmatch(item)
        if match is None:
            raise DataError(f"{where}: item_id must look like 'id_00000001', got {item!r}")
        if new_prefix and name.startswith("img/"):
            name = new_prefix + name[len("img/"):]
        paths, items, places = rows[status]
        paths.append(safe_join(base, name, where))
        items.append(parse_int(match.group(1), partition, line, "item number", minimum=0))
        places.append(where)
    total = sum(len(r[0]) for r in rows.values())
    if total != int(head[0]):
        raise DataError(f"{partition}:1: announces {int(head[0])} images but lists {total} (incomplete copy?)")
    train_items = set(rows["train"][1])
    test_items = set(rows["query"][1]) | set(rows["gallery"][1])
    if train_items & test_items:
        raise DataError(f"{partition}: {len(train_items & test_items)} item(s) are in both train and query/gallery, "
                        f"e.g. id_{min(train_items & test_items):08d}; the splits must be item-disjoint")
    verify_files(base, [p for r in rows.values() for p in r[0]], [w for r in rows.values() for w in r[2]])
    result = {}
    for status, (paths, items, _) in rows.items():
        space = train_items if status == "train" else test_items
        records = SplitRecords(paths, np.asarray(items, dtype=np.int64), {i: f"id_{i:08d}" for i in space})
        result[status] = require_images(records, status, str(partition))
    return result


DATASETS.register("inshop")(
    DatasetSource(
        name="inshop",
        read=read_inshop,
        splits=("train", "query", "gallery"),
        eval_splits=("query", "gallery"),
        how_to_get=HOW_TO_GET,
        expected={"train": (3997, 25882), "query": (3985, 14218), "gallery": (3985, 12612)},
    )
)
