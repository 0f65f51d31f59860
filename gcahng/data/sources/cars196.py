"""Stanford Cars (Cars196) from either official packaging or Kaggle's CSV one; DML split:
classes 1-98 / 99-196.

- "all images": ``cars_annos.mat`` next to ``car_ims/`` (what DML code uses);
- devkit: ``devkit/cars_meta.mat``, ``devkit/cars_train_annos.mat``, ``cars_train/``,
  ``cars_test/`` and ``cars_test_annos_withlabels.mat`` (beside ``devkit/`` or inside it),
  also with Kaggle's doubled folders (``cars_train/cars_train/``). Train and test annotations
  are pooled and split by class; images are keyed by (folder, file name), since
  ``cars_train/00001.jpg`` and ``cars_test/00001.jpg`` are different cars.
- Kaggle "stanford-car-dataset-by-classes-folder" (jutrera; what pytorch-metric-learning
  reads): ``names.csv`` (class ``i`` on line ``i``), ``anno_train.csv`` / ``anno_test.csv``
  (``filename,x1,y1,x2,y2,class``, no header) and images under
  ``car_data/car_data/{train,test}/<class name>/<filename>``, ``/`` in a class name written
  as ``-``. Pooled and split by class like the devkit.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gcahng.data.files import safe_join, verify_files
from gcahng.data.records import SplitRecords, split_by_class
from gcahng.data.sources.base import DATASETS, DatasetSource
from gcahng.errors import DataError

HOW_TO_GET = (
    "Stanford Cars cannot be downloaded automatically (the official site is gone). Get the "
    "'all images' packaging (car_ims.tgz + cars_annos.mat, e.g. from the Hugging Face mirror "
    "datasets/XiN0919/FGVC) and put it as DIR/cars_annos.mat + DIR/car_ims/*.jpg, or the devkit "
    "packaging (cars_train.tgz, cars_test.tgz, car_devkit.tgz, cars_test_annos_withlabels.mat, e.g. "
    "from Kaggle) as DIR/{devkit/cars_meta.mat, devkit/cars_train_annos.mat, "
    "cars_test_annos_withlabels.mat, cars_train/*.jpg, cars_test/*.jpg}, or Kaggle's "
    "stanford-car-dataset-by-classes-folder as DIR/{names.csv, anno_train.csv, anno_test.csv, car_data/}."
)
TRAIN_CLASSES = set(range(1, 99))
_SUBFOLDERS = ("", "cars196", "CARS196", "stanford_cars", "stanford-cars", "Stanford_Cars")


def _load_mat(path: Path) -> dict:
    import scipy.io  # only Cars needs scipy; keep it out of every other import of gcahng.data

    try:
        return scipy.io.loadmat(str(path), squeeze_me=True)
    except FileNotFoundError:
        raise DataError(f"expected {path}, but it does not exist.\n{HOW_TO_GET}") from None
    except Exception as err:  # scipy raises assorted errors for non-.mat content
        raise DataError(f"cannot read {path} as a MATLAB file: {err}") from None


def _struct_fields(mat: dict, variable: str, path: Path, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named fields of a struct array variable, each as a 1-D array, read by field name."""
    if variable not in mat:
        present = ", ".join(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path} has no variable {variable!r} (has: {present})")
    array = np.atleast_1d(mat[variable])
    names = array.dtype.names or ()
    missing = [f for f in fields if f not in names]
    if missing:
        hint = " (cars_test_annos.mat has no labels: use cars_test_annos_withlabels.mat)" if "class" in missing else ""
        raise DataError(f"{path}: struct {variable!r} lacks field(s) {missing} (has {list(names)}){hint}")
    return {f: np.atleast_1d(array[f]) for f in fields}


def _class_names(mat: dict, path: Path) -> dict[int, str]:
    if "class_names" not in mat:
        raise DataError(f"{path} has no variable 'class_names'")
    return {i: str(name) for i, name in enumerate(np.atleast_1d(mat["class_names"]).tolist(), start=1)}


def _class_ids(values: np.ndarray, names: dict[int, str], path: Path) -> list[int]:
    ids = []
    for row, value in enumerate(values.tolist(), start=1):
        if not isinstance(value, (int, float)) or value != int(value) or int(value) not in names:
            raise DataError(f"{path}: annotation {row} has class {value!r}, out of range 1..{len(names)}")
        ids.append(int(value))
    return ids


def _read_all_images(base: Path) -> dict[str, SplitRecords]:
    path = base / "cars_annos.mat"
    mat = _load_mat(path)
    names = _class_names(mat, path)
    fields = _struct_fields(mat, "annotations", path, ("relative_im_path", "class"))
    where = [f"{path} annotation {row}" for row in range(1, len(fields["class"]) + 1)]
    paths = [safe_join(base, str(rel), w) for rel, w in zip(fields["relative_im_path"], where, strict=False)]
    classes = _class_ids(fields["class"], names, path)
    verify_files(base, paths, where)
    return split_by_class(paths, classes, names, TRAIN_CLASSES, str(path))


def _image_folder(base: Path, name: str) -> Path:
    nested = base / name / name
    return nested if nested.is_dir() else base / name


def _read_devkit(base: Path) -> dict[str, SplitRecords]:
    devkit = base / "devkit"
    names = _class_names(_load_mat(devkit / "cars_meta.mat"), devkit / "cars_meta.mat")
    test_labels = next(
        (
            p
            for p in (base / "cars_test_annos_withlabels.mat", devkit / "cars_test_annos_withlabels.mat")
            if p.is_file()
        ),
        None,
    )
    if test_labels is None:
        raise DataError(
            f"expected {base / 'cars_test_annos_withlabels.mat'} (the devkit's cars_test_annos.mat has no "
            f"test labels), but it does not exist.\n{HOW_TO_GET}"
        )
    paths: list[str] = []
    classes: list[int] = []
    where: list[str] = []
    for annos, folder in ((devkit / "cars_train_annos.mat", "cars_train"), (test_labels, "cars_test")):
        fields = _struct_fields(_load_mat(annos), "annotations", annos, ("fname", "class"))
        images = _image_folder(base, folder)
        rows = [f"{annos} annotation {row}" for row in range(1, len(fields["class"]) + 1)]
        paths += [safe_join(images, str(name), w) for name, w in zip(fields["fname"], rows, strict=False)]
        classes += _class_ids(fields["class"], names, annos)
        where += rows
    verify_files(base, paths, where)
    return split_by_class(paths, classes, names, TRAIN_CLASSES, f"{devkit / 'cars_train_annos.mat'} and {test_labels}")


def _read_csv_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise DataError(f"expected {path}, but it does not exist.\n{HOW_TO_GET}") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path} as CSV: {err}") from None


def _read_kaggle_csv(base: Path) -> dict[str, SplitRecords]:
    names = {i: ",".join(row).strip() for i, row in enumerate(_read_csv_rows(base / "names.csv"), start=1)}
    if len(names) != 196:
        raise DataError(f"{base / 'names.csv'} lists {len(names)} class names, expected 196")
    nested = base / "car_data" / "car_data"
    images = nested if nested.is_dir() else base / "car_data"
    paths: list[str] = []
    classes: list[int] = []
    where: list[str] = []
    for split in ("train", "test"):
        annos = base / f"anno_{split}.csv"
        for line, row in enumerate(_read_csv_rows(annos), start=1):
            here = f"{annos}:{line}"
            if len(row) != 6:
                raise DataError(f"{here}: expected 6 columns (filename,x1,y1,x2,y2,class), got {len(row)}: {row}")
            try:
                class_id = int(row[5])
            except ValueError:
                raise DataError(f"{here}: class {row[5]!r} is not an integer") from None
            if class_id not in names:
                raise DataError(f"{here}: class {class_id} out of range 1..196")
            folder = names[class_id].replace("/", "-")
            paths.append(safe_join(images, f"{split}/{folder}/{row[0].strip()}", here))
            classes.append(class_id)
            where.append(here)
    verify_files(base, paths, where)
    listed_in = f"{base / 'anno_train.csv'} and {base / 'anno_test.csv'}"
    return split_by_class(paths, classes, names, TRAIN_CLASSES, listed_in)


def read_cars196(root: Path) -> dict[str, SplitRecords]:
    """Read whichever packaging ``root`` (or a usual subfolder of it) holds."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder.\n{HOW_TO_GET}")
    for sub in _SUBFOLDERS:
        base = root / sub
        if (base / "cars_annos.mat").is_file():
            return _read_all_images(base)
        if (base / "devkit" / "cars_train_annos.mat").is_file():
            return _read_devkit(base)
        if (base / "names.csv").is_file() and (base / "anno_train.csv").is_file():
            return _read_kaggle_csv(base)
    raise DataError(
        f"expected {root / 'cars_annos.mat'} (with car_ims/), {root / 'devkit' / 'cars_train_annos.mat'} "
        f"(with cars_train/, cars_test/) or {root / 'names.csv'} (with anno_train.csv, anno_test.csv, "
        f"car_data/), but none exists.\n{HOW_TO_GET}"
    )


DATASETS.register("cars196")(
    DatasetSource(
        name="cars196",
        read=read_cars196,
        splits=("train", "test"),
        eval_splits=("test",),
        how_to_get=HOW_TO_GET,
        expected={"train": (98, 8054), "test": (98, 8131)},
    )
)
