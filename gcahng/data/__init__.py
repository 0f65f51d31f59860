"""Datasets, robust image loading, the C x m batch sampler and transforms.

    from gcahng.data import create_dataset, ClassBalancedBatchSampler, build_transforms, collate_batch
    train = create_dataset("cub200", "data", "train", transform=build_transforms(True))
    sampler = ClassBalancedBatchSampler(train.labels, 27, 3, seed=0)
    loader = DataLoader(train, batch_sampler=sampler, num_workers=4, collate_fn=collate_batch)

Names are imported on first use, so that ``from gcahng.data.images import load_rgb`` (what
``gcahng retrieve`` needs) does not pay for torchvision and the dataset readers.
"""
from __future__ import annotations

from gcahng._lazy import lazy_module_attributes

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "Batch": "gcahng.data.collate",
    "FailureLog": "gcahng.data.collate",
    "collate_batch": "gcahng.data.collate",
    "ImageDataset": "gcahng.data.dataset",
    "ImageFailure": "gcahng.data.dataset",
    "Sample": "gcahng.data.dataset",
    "MAX_IMAGE_PIXELS": "gcahng.data.images",
    "UnreadableImageError": "gcahng.data.images",
    "load_rgb": "gcahng.data.images",
    "ORIENTATION_COUNTS": "gcahng.data.orientations",
    "OrientedClasses": "gcahng.data.orientations",
    "orient": "gcahng.data.orientations",
    "SplitRecords": "gcahng.data.records",
    "DATASETS": "gcahng.data.sources",
    "ArchiveSpec": "gcahng.data.sources",
    "DatasetSource": "gcahng.data.sources",
    "create_dataset": "gcahng.data.registry",
    "eval_splits": "gcahng.data.registry",
    "read_splits": "gcahng.data.registry",
    "ClassBalancedBatchSampler": "gcahng.data.sampler",
    "IMAGENET_MEAN": "gcahng.data.transforms",
    "IMAGENET_STD": "gcahng.data.transforms",
    "build_transforms": "gcahng.data.transforms",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_module_attributes(__name__, _LAZY)
