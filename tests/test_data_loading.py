"""DataLoader integration: unreadable images are replaced within their class and reported."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import bomb_jpeg_bytes, bomb_png_bytes, make_folder
from torch.utils.data import DataLoader

from gcahng.data import (
    ClassBalancedBatchSampler,
    FailureLog,
    build_transforms,
    collate_batch,
    create_dataset,
)
from gcahng.errors import DataError


@pytest.fixture
def broken_folder(tmp_path):
    make_folder(tmp_path, {"a": 4, "b": 4, "c": 4, "d": 4})
    (tmp_path / "a" / "img1.png").write_bytes(b"not a png")
    (tmp_path / "b" / "img0.jpg").write_bytes(b"\xff\xd8\xff truncated")
    return tmp_path


@pytest.mark.parametrize("workers", [0, 1])
def test_training_loader_replaces_unreadable_images_and_reports_them(broken_folder, workers):
    train = create_dataset("folder", broken_folder, "train", transform=build_transforms(True, 8))
    sampler = ClassBalancedBatchSampler(train.labels, 2, 4, seed=1)
    loader = DataLoader(train, batch_sampler=sampler, num_workers=workers, collate_fn=collate_batch)
    log = FailureLog()
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch, expected in zip(loader, sampler, strict=False):
            assert batch.images.shape == (8, 3, 8, 8)
            assert batch.indices.tolist() == expected
            assert batch.labels.tolist() == train.labels[expected].tolist()
            log.update(batch.failures)
    assert sorted(p.split("/")[-2:][0] + "/" + p.split("/")[-1] for p in log.paths) == ["a/img1.png", "b/img0.jpg"]
    assert log.occurrences >= 2
    summary = log.summary()
    assert summary.startswith("skipped 2 unreadable image(s)") and "img1.png" in summary


def test_substitute_is_another_image_of_the_same_class(broken_folder):
    train = create_dataset("folder", broken_folder, "train")
    bad = train.paths.index(str(broken_folder / "a" / "img1.png"))
    sample = train[bad]
    assert sample.index == bad and sample.label == train.labels[bad]
    assert sample.failure is not None and sample.failure.path == train.paths[bad]
    following = np.asarray(train.load_image(bad + 1), dtype=np.float32) / 255.0
    assert torch.allclose(sample.image, torch.from_numpy(following).permute(2, 0, 1))
    assert train[bad + 1].failure is None


@pytest.mark.parametrize("split", ["train", "test"])
def test_decompression_bombs_are_skipped_with_a_warning_naming_them(tmp_path, split, caplog):
    make_folder(tmp_path, {"a": 3, "b": 3, "c": 3, "d": 3})
    bombs = {"train": ("a/img0.jpg", "b/img1.png"), "test": ("c/img0.jpg", "d/img1.png")}[split]
    (tmp_path / bombs[0]).write_bytes(bomb_jpeg_bytes())
    (tmp_path / bombs[1]).write_bytes(bomb_png_bytes())
    dataset = create_dataset("folder", tmp_path, split, transform=build_transforms(split == "train", 8))
    with caplog.at_level("WARNING"):
        samples = [dataset[i] for i in range(len(dataset))]
    failed = {s.failure.path for s in samples if s.failure is not None}
    assert failed == {str(tmp_path / b) for b in bombs}
    assert all(s.image.shape == (3, 8, 8) for s in samples)
    for bomb in bombs:
        assert f"{tmp_path / bomb}: refused as a possible decompression bomb" in caplog.text


def test_class_with_no_readable_image_raises(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    for path in (tmp_path / "a").glob("img*"):
        path.write_bytes(b"junk")
    train = create_dataset("folder", tmp_path, "train")
    with pytest.raises(DataError, match="every image of class 'a'"):
        train[0]


def test_evaluation_loader_keeps_dataset_order(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 2, "c": 2, "d": 3})
    test = create_dataset("folder", tmp_path, "test", transform=build_transforms(False, 8))
    batches = list(DataLoader(test, batch_size=2, shuffle=False, collate_fn=collate_batch))
    assert torch.cat([b.indices for b in batches]).tolist() == list(range(len(test)))
    assert torch.cat([b.labels for b in batches]).tolist() == test.labels.tolist()
    assert all(not b.failures for b in batches)
