"""Class augmentation by orientation: every training class seen rotated or mirrored becomes
a class of its own.

With few training classes an embedding learns only what separates them and transfers poorly
to unseen classes. Treating each of the 4 rotations (``rot90``) or 8 rotations and mirror
images (``dihedral``) of a class as a new class multiplies the training classes by 4 or 8
without any new images; this is the standard remedy of few-shot work on handwriting
(Omniglot's rotated classes). It is applied to the training split only; evaluation splits
keep their images and labels.

    train = OrientedClasses(create_dataset("digits", split="train"), "dihedral", transform=t)
    # 5 digits x 8 orientations = 40 classes, 8 x as many samples per epoch
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from gcahng.choices import ClassAugmentation
from gcahng.data.dataset import ImageDataset, Sample, Transform
from gcahng.errors import InputError

# class augmentation name -> number of orientations (the config's ``class_augmentation`` values)
ORIENTATION_COUNTS: dict[ClassAugmentation, int] = {"none": 1, "rot90": 4, "dihedral": 8}

_NAMES = ("", " rot90", " rot180", " rot270", " mirrored", " mirrored rot90", " mirrored rot180",
          " mirrored rot270")


def orient(image: Image.Image, k: int) -> Image.Image:
    """Orientation ``k`` in 0..7 of ``image``: mirrored left-right when ``k >= 4``, then
    rotated counter-clockwise by ``90 * (k % 4)`` degrees. ``k = 0`` returns ``image``."""
    if not 0 <= k < 8:
        raise InputError(f"orientation must be in 0..7, got {k}")
    if k >= 4:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rotations = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
    return image if k % 4 == 0 else image.transpose(rotations[k % 4])


class OrientedClasses(Dataset):
    """``base`` with each class ``c`` split into ``K`` classes, one per orientation.

    Index ``i = k * N + j`` (``N = len(base)``) is image ``j`` in orientation ``k`` with dense
    label ``k * base.num_classes + base.labels[j]``; ``K`` is 1, 4 or 8 for ``none``,
    ``rot90`` and ``dihedral``. The attributes mirror :class:`ImageDataset`'s (``labels``,
    ``num_classes``, ``class_names``, ``paths``, ``name``, ``split``), so samplers and the
    trainer use it unchanged. Unreadable images are replaced as in ``base``; the sample's
    ``index`` is the index asked for here.
    """

    def __init__(self, base: ImageDataset, augmentation: str, transform: Transform | None = None) -> None:
        if augmentation not in ORIENTATION_COUNTS:
            raise InputError(
                f"class augmentation must be one of {sorted(ORIENTATION_COUNTS)}, got {augmentation!r}"
            )
        self.base = base
        self.augmentation = augmentation
        self.transform = transform
        self.orientations = ORIENTATION_COUNTS[augmentation]
        self.name, self.split = base.name, base.split
        self.num_classes = base.num_classes * self.orientations
        self.labels = np.concatenate([base.labels + k * base.num_classes for k in range(self.orientations)])
        self.class_names = [name + _NAMES[k] for k in range(self.orientations) for name in base.class_names]
        self.paths = list(base.paths) * self.orientations

    def __len__(self) -> int:
        return len(self.base) * self.orientations

    def __repr__(self) -> str:
        return (f"OrientedClasses({self.name!r}, split={self.split!r}, {self.augmentation}, "
                f"images={len(self)}, classes={self.num_classes})")

    def __getitem__(self, index: int) -> Sample:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        k, j = divmod(index, len(self.base))
        image, failure = self.base.read(j)
        image = orient(image, k)
        tensor = self.transform(image) if self.transform is not None else TF.to_tensor(image)
        return Sample(tensor, int(self.labels[index]), index, failure)
