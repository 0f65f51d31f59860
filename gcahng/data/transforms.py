"""Image transforms of method.md §7, with the size, crop scale and flip configurable."""
from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T

from gcahng.errors import InputError
from gcahng.models.spec import IMAGENET_MEAN, IMAGENET_STD
from gcahng.preprocess import default_resize


def build_transforms(
    train: bool,
    image_size: int = 224,
    resize_size: int | None = None,
    *,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    hflip: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """PIL RGB image -> normalised float tensor (3, image_size, image_size).

    train: ``RandomResizedCrop(image_size, scale=crop_scale)`` (+ random horizontal flip when
        ``hflip``); the defaults are the paper's. For tiny sources such as the 8x8 digits use
        e.g. ``crop_scale=(0.6, 1.0), hflip=False``.
    test: ``Resize(resize_size)`` of the shorter side, then ``CenterCrop(image_size)``;
        ``resize_size`` defaults to ``round(image_size * 256 / 224)`` (256 for 224).
    Both end with ``ToTensor`` and per-channel normalisation (ImageNet mean and std by default; pass the backbone's
    ``input_mean``/``input_std``, which the model spec holds). Retrieval and evaluation use the
    torch-free :class:`gcahng.preprocess.TestPreprocess`, tested equal to the test pipeline here.
    """
    if image_size < 1:
        raise InputError(f"image_size must be >= 1, got {image_size}")
    low, high = crop_scale
    if not 0.0 < low <= high <= 1.0:
        raise InputError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
    if train:
        steps: list = [T.RandomResizedCrop(image_size, scale=(low, high))]
        if hflip:
            steps.append(T.RandomHorizontalFlip())
    else:
        resize = default_resize(image_size) if resize_size is None else resize_size
        if resize < image_size:
            raise InputError(f"resize_size ({resize}) must be >= image_size ({image_size})")
        steps = [T.Resize(resize), T.CenterCrop(image_size)]
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)
