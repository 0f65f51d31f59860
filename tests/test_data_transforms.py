"""build_transforms: method.md §7 geometry, configurable size, crop scale and flip."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gcahng.data import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from gcahng.errors import InputError


def _constant(colour, size=(500, 375)) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_test_transform_resizes_by_256_over_224_then_centre_crops():
    steps = build_transforms(False).transforms
    assert steps[0].size == 256 and steps[1].size == (224, 224)
    assert build_transforms(False, 32).transforms[0].size == round(32 * 256 / 224)
    assert build_transforms(False, 64, resize_size=64).transforms[0].size == 64
    out = build_transforms(False, 224)(_constant((255, 0, 128)))
    assert out.shape == (3, 224, 224)
    expected = (torch.tensor([1.0, 0.0, 128 / 255]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out[:, 100, 100], expected, atol=1e-5)


def test_test_transform_keeps_the_centre():
    pixels = np.zeros((300, 400, 3), dtype=np.uint8)
    pixels[:, 200:] = 255  # right half white
    out = build_transforms(False, 64, mean=(0, 0, 0), std=(1, 1, 1))(Image.fromarray(pixels))
    assert out[0, :, :28].max() < 0.05 and out[0, :, 36:].min() > 0.95


def test_train_transform_size_and_flip_option():
    torch.manual_seed(0)
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:, :16] = 255  # left half white
    image = Image.fromarray(pixels)
    no_flip = build_transforms(True, 32, crop_scale=(1.0, 1.0), hflip=False, mean=(0, 0, 0), std=(1, 1, 1))
    for _ in range(10):
        out = no_flip(image)
        assert out.shape == (3, 32, 32) and out[0, :, :16].min() == 1.0 and out[0, :, 16:].max() == 0.0
    flip = build_transforms(True, 32, crop_scale=(1.0, 1.0), mean=(0, 0, 0), std=(1, 1, 1))
    flipped = [flip(image) for _ in range(40)]
    assert any(o[0, :, 0].mean() < 0.5 for o in flipped) and any(o[0, :, 0].mean() > 0.5 for o in flipped)


def test_crop_scale_controls_the_crop_area():
    steps = build_transforms(True, 32, crop_scale=(0.6, 1.0)).transforms
    assert steps[0].scale == (0.6, 1.0) and steps[0].size == (32, 32)
    assert build_transforms(True).transforms[0].scale == (0.08, 1.0)
    with pytest.raises(InputError, match="crop_scale"):
        build_transforms(True, crop_scale=(0.5, 1.5))
    with pytest.raises(InputError, match="resize_size"):
        build_transforms(False, 64, resize_size=32)
