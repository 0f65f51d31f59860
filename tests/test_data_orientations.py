"""Class augmentation by orientation: ``orient`` against numpy, ``OrientedClasses`` labels,
images, failures and batches, and the training datasets a config builds."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import make_folder
from PIL import Image

from gcahng.config import load_config, preset_path
from gcahng.data import ClassBalancedBatchSampler, OrientedClasses, create_dataset, orient
from gcahng.errors import ConfigError, InputError
from gcahng.training.build import load_datasets


def _numpy_orientation(array: np.ndarray, k: int) -> np.ndarray:
    """The obvious definition: mirror left-right for k >= 4, then k % 4 counter-clockwise quarter turns."""
    return np.rot90(np.fliplr(array) if k >= 4 else array, k % 4)


def test_orient_matches_numpy_and_gives_eight_distinct_images() -> None:
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)  # not square, not symmetric
    image = Image.fromarray(array)
    seen = set()
    for k in range(8):
        result = np.asarray(orient(image, k))
        np.testing.assert_array_equal(result, _numpy_orientation(array, k))
        seen.add(result.tobytes() + bytes(result.shape))
    assert len(seen) == 8
    with pytest.raises(InputError, match="orientation must be in 0..7, got 8"):
        orient(image, 8)


@pytest.mark.parametrize("augmentation, count", [("none", 1), ("rot90", 4), ("dihedral", 8)])
def test_oriented_classes_labels_names_and_images(augmentation: str, count: int) -> None:
    base = create_dataset("digits", split="train")
    data = OrientedClasses(base, augmentation)
    n = len(base)
    assert len(data) == count * n and data.orientations == count
    assert data.num_classes == 5 * count and len(data.class_names) == 5 * count
    assert np.array_equal(np.bincount(data.labels), np.tile(np.bincount(base.labels), count))
    for index in (0, n - 1, (count - 1) * n + 17):
        k, j = divmod(index, n)
        sample = data[index]
        assert sample.index == index and sample.label == k * 5 + base.labels[j] == data.labels[index]
        expected = np.asarray(orient(base.load_image(j), k), dtype=np.float32) / 255.0
        torch.testing.assert_close(sample.image, torch.from_numpy(expected.copy()).permute(2, 0, 1))
    assert data.class_names[:5] == base.class_names
    if count == 8:
        assert data.class_names[5 * 7 + 3] == "3 mirrored rot270"
    with pytest.raises(IndexError, match="out of range"):
        data[len(data)]


def test_unknown_augmentation_is_an_error_naming_the_choices() -> None:
    with pytest.raises(InputError, match=r"one of \['dihedral', 'none', 'rot90'\], got 'rot45'"):
        OrientedClasses(create_dataset("digits", split="train"), "rot45")
    with pytest.raises(ConfigError, match="'class_augmentation' must be 'none' | 'rot90' | 'dihedral'"):
        load_config(preset_path("digits"), overrides={"class_augmentation": "rot45"})


def test_unreadable_images_are_replaced_in_every_orientation(tmp_path) -> None:
    make_folder(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "a" / "img1.png").write_bytes(b"not a png")
    base = create_dataset("folder", tmp_path, "train")
    data = OrientedClasses(base, "rot90")
    bad = base.paths.index(str(tmp_path / "a" / "img1.png"))
    for k in range(4):
        sample = data[k * len(base) + bad]
        assert sample.failure is not None and sample.failure.path.endswith("img1.png")
        assert sample.label == k * base.num_classes + base.labels[bad]


def test_batches_draw_from_the_oriented_classes() -> None:
    data = OrientedClasses(create_dataset("digits", split="train"), "dihedral")
    sampler = ClassBalancedBatchSampler(data.labels, 5, 4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(data) // 20
    used = set()
    for batch in batches[:50]:
        labels = data.labels[batch].reshape(4, 5)  # chunk-major: every chunk holds the same 5 classes
        assert (labels == labels[0]).all() and len(set(labels[0])) == 5
        used.update(labels[0].tolist())
    assert max(used) >= 5  # classes beyond the upright digits are drawn


def test_config_builds_the_augmented_training_split_only() -> None:
    cfg = load_config(preset_path("digits"), overrides={"class_augmentation": "rot90"})
    datasets = load_datasets(cfg)
    assert datasets["train"].num_classes == 20 and len(datasets["train"]) == 4 * 901
    assert datasets["test"].num_classes == 5 and len(datasets["test"]) == 896
    assert load_config(preset_path("digits")).class_augmentation == "dihedral"
