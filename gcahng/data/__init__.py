"""Datasets, robust image loading, the C x m batch sampler and transforms.

    from gcahng.data import create_dataset, ClassBalancedBatchSampler, build_transforms, collate_batch
    train = create_dataset("cub200", "data", "train", transform=build_transforms(True))
    sampler = ClassBalancedBatchSampler(train.labels, 27, 3, seed=0)
    loader = DataLoader(train, batch_sampler=sampler, num_workers=4, collate_fn=collate_batch)
"""
from gcahng.data import sources as _sources  # noqa: F401  (registers the built-in datasets)
from gcahng.data.collate import Batch, FailureLog, collate_batch
from gcahng.data.dataset import ImageDataset, ImageFailure, Sample
from gcahng.data.images import MAX_IMAGE_PIXELS, UnreadableImageError, load_rgb
from gcahng.data.records import SplitRecords
from gcahng.data.registry import DATASETS, ArchiveSpec, DatasetSource, create_dataset, eval_splits, read_splits
from gcahng.data.sampler import ClassBalancedBatchSampler
from gcahng.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

__all__ = [
    "DATASETS",
    "MAX_IMAGE_PIXELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ArchiveSpec",
    "Batch",
    "ClassBalancedBatchSampler",
    "DatasetSource",
    "FailureLog",
    "ImageDataset",
    "ImageFailure",
    "Sample",
    "SplitRecords",
    "UnreadableImageError",
    "build_transforms",
    "collate_batch",
    "create_dataset",
    "eval_splits",
    "load_rgb",
    "read_splits",
]
