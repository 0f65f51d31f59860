"""``ImageDataset``: images and dense labels of one split, robust to unreadable files."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from gcahng.data.images import load_rgb
from gcahng.data.records import SplitRecords
from gcahng.errors import DataError

logger = logging.getLogger(__name__)

Transform = Callable[[Image.Image], torch.Tensor]


class ImageFailure(NamedTuple):
    """An image that could not be loaded and was replaced: its path and the reason."""

    path: str
    reason: str


class Sample(NamedTuple):
    """One item of an :class:`ImageDataset`.

    image: float tensor (3, H, W) after the transform.
    label: dense class label in ``0..num_classes-1``.
    index: the index that was asked for (also when another image was substituted).
    failure: the :class:`ImageFailure` of the requested image when it could not be read and
        another image of the same class was returned instead; ``None`` otherwise.
    """

    image: torch.Tensor
    label: int
    index: int
    failure: ImageFailure | None


class ImageDataset(Dataset):
    """Images of one split with dense integer labels.

    Attributes:
        paths: list[str], one per image. For in-memory sets (``digits``) these are synthetic
            identifiers such as ``"digits/0042"`` (the index into the source array).
        labels: int64 array (N,), dense labels ``0..num_classes-1``; label ``k`` is the
            ``k``-th smallest original class id of the split's label space.
        num_classes: size of the label space.
        class_names: readable name of each dense label.
        class_ids: the dataset's own class id of each dense label.
        name, split: dataset and split names.

    ``dataset[i]`` returns a :class:`Sample`. When image ``i`` cannot be read, the next
    readable image of the same class (in index order, wrapping around) is returned in its
    place with the failure attached, so a C x m batch keeps its layout; a warning is logged
    once per file and process. Only when every image of the class is unreadable does it
    raise :class:`~gcahng.errors.DataError`.
    """

    def __init__(
        self, records: SplitRecords, *, name: str, split: str, transform: Transform | None = None
    ) -> None:
        self.name = name
        self.split = split
        self.transform = transform
        self.paths = records.paths
        self.class_ids = np.array(sorted(records.class_names), dtype=np.int64)
        self.class_names = [records.class_names[int(k)] for k in self.class_ids]
        self.num_classes = len(self.class_ids)
        self.labels = np.searchsorted(self.class_ids, records.class_keys).astype(np.int64)
        if len(self.labels) and not np.array_equal(self.class_ids[self.labels], records.class_keys):
            raise DataError(f"{name}/{split}: some images have a class id without a class name")
        self._images = records.images
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(self.num_classes + 1))
        self._members = [order[bounds[k] : bounds[k + 1]] for k in range(self.num_classes)]
        self._unreadable: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageDataset({self.name!r}, split={self.split!r}, images={len(self)}, classes={self.num_classes})"

    def load_image(self, index: int) -> Image.Image:
        """The RGB image at ``index``; raises :class:`UnreadableImageError` if it cannot be read."""
        if self._images is not None:
            return Image.fromarray(self._images[index], "RGB")
        return load_rgb(self.paths[index])

    def read(self, index: int) -> tuple[Image.Image, ImageFailure | None]:
        """The RGB image at ``index`` before the transform, or, when it cannot be read, another
        image of the same class together with the failure."""
        try:
            return self.load_image(index), None
        except DataError as err:
            failure = self._record_failure(index, err)
            return self._substitute(index, int(self.labels[index])), failure

    def __getitem__(self, index: int) -> Sample:
        index = int(index)
        image, failure = self.read(index)
        tensor = self.transform(image) if self.transform is not None else TF.to_tensor(image)
        return Sample(tensor, int(self.labels[index]), index, failure)

    def _record_failure(self, index: int, err: DataError) -> ImageFailure:
        if index not in self._unreadable:
            self._unreadable.add(index)
            logger.warning("skipping unreadable image (replaced by another of its class): %s", err)
        return ImageFailure(self.paths[index], str(err))

    def _substitute(self, index: int, label: int) -> Image.Image:
        members = self._members[label]
        start = int(np.searchsorted(members, index))
        for offset in range(1, len(members) + 1):
            candidate = int(members[(start + offset) % len(members)])
            if candidate in self._unreadable:
                continue
            try:
                return self.load_image(candidate)
            except DataError as err:
                self._record_failure(candidate, err)
        shown = ", ".join(self.paths[int(i)] for i in members[:5])
        raise DataError(
            f"every image of class {self.class_names[label]!r} in {self.name}/{self.split} is unreadable: {shown}"
        )
