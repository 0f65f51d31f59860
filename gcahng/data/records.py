"""What a dataset reader returns: per split, the image paths and their original class ids."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gcahng.errors import DataError, InputError


@dataclass(frozen=True)
class SplitRecords:
    """The images of one split.

    paths: one string per image (absolute file paths; synthetic identifiers for in-memory sets).
    class_keys: int64 array (N,), the dataset's own class id of each image.
    class_names: original class id -> readable name, for every class of the split's label
        space. Dense labels are the rank of the class id in ``sorted(class_names)``; In-Shop's
        query and gallery share one label space this way.
    images: optional uint8 array (N, H, W, 3) holding the pixels in memory (``digits``).
    """

    paths: list[str]
    class_keys: np.ndarray
    class_names: dict[int, str]
    images: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.class_keys):
            raise InputError(f"{len(self.paths)} paths but {len(self.class_keys)} class ids")
        if self.images is not None and len(self.images) != len(self.paths):
            raise InputError(f"{len(self.paths)} paths but {len(self.images)} in-memory images")

    def select_classes(self, keep: set[int]) -> SplitRecords:
        """The images whose class id is in ``keep``, with the label space restricted to it."""
        mask = np.isin(self.class_keys, sorted(keep))
        return SplitRecords(
            paths=[p for p, m in zip(self.paths, mask, strict=False) if m],
            class_keys=self.class_keys[mask],
            class_names={k: v for k, v in self.class_names.items() if k in keep},
            images=None if self.images is None else self.images[mask],
        )


def require_images(records: SplitRecords, split: str, listed_in: str) -> SplitRecords:
    """``records`` unchanged, or a :class:`DataError` naming ``listed_in`` (the metadata file) when
    the split holds no image: an empty split trains or evaluates nothing."""
    if not records.paths:
        raise DataError(f"{listed_in}: lists no images of the {split} split")
    return records


def split_by_class(
    paths: list[str], class_keys: list[int], class_names: dict[int, str], train_classes: set[int], listed_in: str
) -> dict[str, SplitRecords]:
    """``{"train", "test"}`` records: images of ``train_classes`` versus all the others.

    listed_in: the metadata file(s) the paths come from, named when a split is empty.
    """
    keys = np.asarray(class_keys, dtype=np.int64)
    present = set(keys.tolist())
    everything = SplitRecords(list(paths), keys, {k: class_names[k] for k in present})
    train = present & train_classes
    return {
        split: require_images(everything.select_classes(classes), split, listed_in)
        for split, classes in (("train", train), ("test", present - train))
    }


def hold_out_validation(
    splits: dict[str, SplitRecords],
    *,
    val_fraction: float | None = None,
    val_count: int | None = None,
    seed: int = 0,
) -> dict[str, SplitRecords]:
    """Move a seeded random subset of the training classes into a class-disjoint ``"val"`` split.

    Exactly one of ``val_fraction`` (0 < f < 1; rounded, at least one class) and ``val_count``
    (number of classes) selects how many; at least one class stays in ``"train"``. The choice
    depends only on the sorted training class ids and ``seed``. With neither given, the splits
    are returned unchanged.
    """
    if val_fraction is None and val_count is None:
        return splits
    if val_fraction is not None and val_count is not None:
        raise InputError("give val_fraction or val_count, not both")
    train = splits["train"]
    classes = np.array(sorted(set(train.class_keys.tolist())), dtype=np.int64)
    if val_fraction is not None:
        if not 0.0 < val_fraction < 1.0:
            raise InputError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
        count = max(1, int(round(val_fraction * len(classes))))
    else:
        count = int(val_count)  # type: ignore[arg-type]
    if not 1 <= count < len(classes):
        raise InputError(
            f"cannot hold out {count} validation classes from {len(classes)} training classes "
            "(need at least 1 and must leave at least 1 for training)"
        )
    chosen = np.random.default_rng(seed).permutation(classes)[:count]
    val_classes = set(chosen.tolist())
    result = dict(splits)
    result["train"] = train.select_classes(set(classes.tolist()) - val_classes)
    result["val"] = train.select_classes(val_classes)
    return result
