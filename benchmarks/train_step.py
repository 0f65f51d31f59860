"""Time per training iteration with and without hard-negative generation (GCA-HNG vs the
metric loss alone), for one backbone, batch and image size, on the CPU and on a GPU when
one is present. Reports the overhead of GCA-HNG as a ratio.

    python benchmarks/train_step.py --backbone resnet50 --classes-per-batch 27 --per-class 3 --image-size 224
    python benchmarks/train_step.py --backbone tiny_cnn --image-size 32 --embedding-dim 64 --devices cpu
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from gcahng.config import TrainConfig
from gcahng.training.build import build_training_parts


def time_iterations(cfg: TrainConfig, device: torch.device, iterations: int, warmup: int) -> float:
    """Median seconds per iteration of ``cfg`` on random images."""
    torch.manual_seed(0)
    parts = build_training_parts(cfg, num_classes=100, device=device)
    C, m = cfg.classes_per_batch, cfg.per_class
    images = torch.randn(C * m, 3, cfg.image_size, cfg.image_size, device=device)
    labels = torch.arange(C).repeat(m)  # chunk-major: chunk t lists classes 0..C-1
    times = []
    for i in range(warmup + iterations):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        parts.step(images, labels, C, m)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--embedding-dim", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes-per-batch", type=int, default=27)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--gcl-iterations", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cuda is skipped when absent")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    args = parser.parse_args()
    rows = []
    for name in args.devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            continue
        device = torch.device(name)
        timings = {}
        for mode in ("none", "gca"):
            cfg = TrainConfig(
                backbone=args.backbone, embedding_dim=args.embedding_dim, image_size=args.image_size,
                pretrained=False, classes_per_batch=args.classes_per_batch, per_class=args.per_class,
                gcl_iterations=args.gcl_iterations, heads=args.heads, generator=mode, device=name,
                amp=args.amp and device.type == "cuda",
            )
            timings[mode] = time_iterations(cfg, device, args.iterations, args.warmup)
        row = {"device": str(device), "threads": torch.get_num_threads(), "backbone": args.backbone,
               "batch": f"{args.classes_per_batch}x{args.per_class}", "image_size": args.image_size,
               "D": args.embedding_dim, "K": args.gcl_iterations, "H": args.heads,
               "metric_loss_only_s": round(timings["none"], 4), "gca_hng_s": round(timings["gca"], 4),
               "overhead_ratio": round(timings["gca"] / timings["none"], 3),
               "load_average": [round(x, 2) for x in os.getloadavg()]}
        rows.append(row)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
