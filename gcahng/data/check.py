"""``gcahng data check``: scan a dataset and list every problem found."""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcahng.data.images import image_header, load_rgb
from gcahng.data.records import SplitRecords
from gcahng.data.registry import DATASETS, read_splits
from gcahng.errors import GcahngError

MIN_SIDE = 16
"""Images with a side shorter than this many pixels are reported as suspicious."""

_MAX_LISTED = 10

_FORMAT_ENDINGS = {
    "JPEG": {".jpg", ".jpeg"}, "PNG": {".png"}, "GIF": {".gif"}, "BMP": {".bmp"},
    "WEBP": {".webp"}, "TIFF": {".tif", ".tiff"}, "PPM": {".ppm", ".pgm", ".pbm"},
}


@dataclass
class CheckReport:
    """counts: split -> (classes, images); errors make the check fail, warnings do not."""

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def inspect_image(path: str, decode: bool = True) -> tuple[str | None, str | None, str | None]:
    """``(error, warning, mode)`` for one file: unreadable -> error; tiny, or content that does
    not match the file ending -> warning; ``mode`` is the stored PIL mode when readable."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return f"{path}: empty file (0 bytes)", None, None
    try:
        mode, fmt, width, height = image_header(path)
        if decode:
            load_rgb(path)
    except GcahngError as err:
        return str(err), None, None
    ending = os.path.splitext(path)[1].lower()
    warning = None
    if fmt in _FORMAT_ENDINGS and ending not in _FORMAT_ENDINGS[fmt]:
        warning = f"{path}: holds {fmt} data but is named {ending!r}"
    elif min(width, height) < MIN_SIDE:
        warning = f"{path}: only {width}x{height} pixels"
    return None, warning, mode


def _queries_without_gallery(splits: dict[str, SplitRecords], eval_splits: tuple[str, ...]) -> list[str]:
    """A warning naming the classes (In-Shop: items) that have query images but no gallery image."""
    if eval_splits != ("query", "gallery"):
        return []
    query, gallery = splits["query"], splits["gallery"]
    missing = sorted(set(query.class_keys.tolist()) - set(gallery.class_keys.tolist()))
    if not missing:
        return []
    shown = ", ".join(query.class_names[k] for k in missing[:_MAX_LISTED])
    more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    queries = int(np.isin(query.class_keys, missing).sum())
    return [f"{len(missing)} item(s) have query images but no gallery image: {shown}{more} "
            f"(their {queries} queries are left out of Recall@K)"]


def check_dataset(
    name: str,
    root: str | Path | None,
    *,
    decode: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> CheckReport:
    """Read the metadata, count classes and images per split, and open every image.

    decode: fully decode each image (slow, finds truncated files) or only read its header.
    progress: called with the number of images inspected so far, every 1,000 images.
    """
    report = CheckReport()
    try:
        splits = read_splits(name, root, **options)
    except GcahngError as err:
        report.errors.append(str(err))
        return report
    expected = DATASETS.get(name).expected
    for split, records in splits.items():
        counts = (len(np.unique(records.class_keys)), len(records.paths))
        report.counts[split] = counts
        if split in expected and expected[split] != counts:
            (want_c, want_i), (got_c, got_i) = expected[split], counts
            report.warnings.append(
                f"{split}: {got_c:,} classes / {got_i:,} images, the official {name} split has "
                f"{want_c:,} / {want_i:,} (incomplete or modified copy?)"
            )
    report.warnings += _queries_without_gallery(splits, DATASETS.get(name).eval_splits)
    files = sorted({p for r in splits.values() if r.images is None for p in r.paths})
    modes: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for done, (error, warning, mode) in enumerate(pool.map(lambda p: inspect_image(p, decode), files), start=1):
            if error:
                report.errors.append(error)
            if warning:
                report.warnings.append(warning)
            if mode:
                modes[mode] += 1
            if progress is not None and done % 1000 == 0:
                progress(done)
    other = {mode: n for mode, n in modes.items() if mode != "RGB"}
    if other:
        listed = ", ".join(f"{n} {mode}" for mode, n in sorted(other.items()))
        report.notes.append(f"images stored in other modes than RGB (converted when loaded): {listed}")
    return report
