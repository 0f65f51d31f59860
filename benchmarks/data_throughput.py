"""Decoded-and-augmented images per second through the DataLoader, gcahng vs torchvision.

Generates JPEGs of realistic size (default 500x375, quality 90, smooth content with noise
like photographs) in a temporary folder, then loads them with the training transforms of
method.md §7 through ``torch.utils.data.DataLoader`` for each worker count, once with
gcahng's ``ImageDataset`` + ``collate_batch`` and once with torchvision's ``ImageFolder``
over the same files, with the same ``ClassBalancedBatchSampler`` batches. Worker processes
use one torch thread each (PyTorch's default); ``--torch-threads`` sets the main process's. The two are
measured alternately ``--repeats`` times; the best rate of each is reported.

    python benchmarks/data_throughput.py --images 384 --workers 0 1 2
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from gcahng.data import ClassBalancedBatchSampler, ImageDataset, SplitRecords, build_transforms, collate_batch


def make_jpegs(root: Path, count: int, classes: int, size: tuple[int, int], seed: int = 0) -> None:
    """``count`` JPEGs spread over ``classes`` folders: gradients + blobs + noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        folder = root / f"class_{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.uniform(0, 255, 3) * (xs[..., None] / width) + rng.uniform(0, 255, 3) * (ys[..., None] / height)
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(30, 150)
        blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))[..., None] * rng.uniform(-120, 120, 3)
        noise = rng.normal(0, 12, (height, width, 3))
        pixels = np.clip(base / 2 + blob + noise + 64, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def images_per_second(loader: DataLoader, epochs: int) -> float:
    """Images per second after the first batch (which includes worker start-up)."""
    images, start = 0, None
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            images += len(batch[0])
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes-per-batch", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="intra-op threads of the main process (matters for --workers 0: on a busy "
                             "machine several threads make ToTensor/Normalize many times slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root, args.images, args.classes, (args.width, args.height))
        sizes = [os.path.getsize(p) for p in root.rglob("*.jpg")]
        print(f"{len(sizes)} JPEGs of {args.width}x{args.height}, mean {np.mean(sizes) / 1024:.0f} KiB; "
              f"train transforms at {args.image_size}px; batches {args.classes_per_batch}x{args.per_class}; "
              f"torch threads {args.torch_threads}; load average {os.getloadavg()[0]:.2f}")
        transform = build_transforms(True, args.image_size)
        reference = ImageFolder(str(root), transform=transform)
        paths, targets = zip(*reference.samples, strict=False)
        ours = ImageDataset(
            SplitRecords(list(paths), np.asarray(targets, dtype=np.int64), {k: str(k) for k in set(targets)}),
            name="benchmark", split="train", transform=transform,
        )
        print(f"{'workers':>7} {'gcahng img/s':>13} {'ImageFolder img/s':>18} {'ratio':>6}")
        for workers in args.workers:
            rates: dict[str, list[float]] = {"gcahng": [], "torchvision": []}
            for _ in range(args.repeats):
                for name, dataset, collate in (("gcahng", ours, collate_batch), ("torchvision", reference, None)):
                    sampler = ClassBalancedBatchSampler(ours.labels, args.classes_per_batch, args.per_class, seed=0)
                    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate)
                    rates[name].append(images_per_second(loader, args.epochs))
            a, b = max(rates["gcahng"]), max(rates["torchvision"])
            print(f"{workers:>7} {a:>13.1f} {b:>18.1f} {a / b:>6.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
