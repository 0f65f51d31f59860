"""Time per training iteration with and without hard-negative generation (GCA-HNG vs the
metric loss alone), for one training config, on the CPU and on a GPU when one is present.
Reports the overhead of GCA-HNG as a ratio; both sides run alternately in the same process,
so the ratio holds under load even when the absolute times do not.

    python benchmarks/train_step.py --config benchmarks/configs/digits_iteration.yaml --devices cpu
    python benchmarks/train_step.py --config benchmarks/configs/glyphs_25x3.yaml --devices cpu
    python benchmarks/train_step.py --backbone resnet50 --classes-per-batch 27 --per-class 3 --image-size 224
    python benchmarks/train_step.py --config benchmarks/configs/digits_iteration.yaml --set embedding_dim=16

``--config`` takes a training config YAML (the files in ``benchmarks/configs/`` are frozen
copies, so that preset changes do not move the baseline); without it the config is built from
the size options; ``--set KEY=VALUE`` (repeatable, as in ``gcahng fit``) then changes fields of it
for both sides. The classifier has ``--num-classes`` classes (default: the training classes
of the config's dataset for ``--config`` (digits: 40), else 100). ``--profile FILE`` writes a
torch.profiler table of one GCA-HNG iteration. ``--out FILE`` appends each result line (JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from gcahng.config import TrainConfig, apply_overrides, load_config, parse_assignments
from gcahng.errors import ConfigError
from gcahng.training.build import TrainingParts, build_training_parts, load_datasets

#: Config fields this script sets for each side itself (``--generator`` per side, ``--devices``, ``--amp``).
SIDE_FIELDS = ("generator", "device", "amp")


def build(cfg: TrainConfig, device: torch.device, num_classes: int) -> tuple[TrainingParts, torch.Tensor, torch.Tensor]:
    """The training parts of ``cfg`` in training mode and one random chunk-major batch."""
    torch.manual_seed(0)
    parts = build_training_parts(cfg, num_classes=num_classes, device=device)
    parts.model.train()
    parts.generator.train()
    C, m = cfg.classes_per_batch, cfg.per_class
    images = torch.randn(C * m, 3, cfg.image_size, cfg.image_size, device=device)
    labels = torch.arange(C).repeat(m)  # chunk-major: chunk t lists classes 0..C-1
    return parts, images, labels


def _timed_step(parts: TrainingParts, images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig) -> float:
    device = images.device
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    parts.step(images, labels, cfg.classes_per_batch, cfg.per_class)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_modes(cfgs: dict[str, TrainConfig], device: torch.device, num_classes: int, iterations: int,
               warmup: int) -> dict[str, float]:
    """Median seconds per iteration of each config, the configs' iterations interleaved."""
    built = {mode: build(cfg, device, num_classes) for mode, cfg in cfgs.items()}
    times: dict[str, list[float]] = {mode: [] for mode in cfgs}
    for i in range(warmup + iterations):
        for mode, (parts, images, labels) in built.items():
            elapsed = _timed_step(parts, images, labels, cfgs[mode])
            if i >= warmup:
                times[mode].append(elapsed)
    return {mode: statistics.median(values) for mode, values in times.items()}


def profile_iteration(cfg: TrainConfig, device: torch.device, num_classes: int, path: Path, rows: int = 40) -> None:
    """Write torch.profiler's operator table (sorted by self CPU time) of 5 GCA-HNG iterations."""
    from torch.profiler import ProfilerActivity, profile

    parts, images, labels = build(cfg, device, num_classes)
    for _ in range(3):
        parts.step(images, labels, cfg.classes_per_batch, cfg.per_class)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            parts.step(images, labels, cfg.classes_per_batch, cfg.per_class)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    path.write_text(f"torch.profiler, 5 GCA-HNG iterations of {cfg.classes_per_batch} x {cfg.per_class}, "
                    f"D = {cfg.embedding_dim}, K = {cfg.gcl_iterations}, H = {cfg.heads}, {cfg.backbone} at "
                    f"{cfg.image_size} px, {torch.get_num_threads()} threads, 1-minute load average "
                    f"{os.getloadavg()[0]:.2f}\n\n{table}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="training config YAML (sizes, layers, learning rates)")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--embedding-dim", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes-per-batch", type=int, default=27)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--gcl-iterations", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a config field for both sides (YAML value); repeatable")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cuda is skipped when absent")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CPU and CUDA)")
    parser.add_argument("--profile", type=Path, help="write a torch.profiler table of the GCA-HNG iteration here")
    parser.add_argument("--out", type=Path, help="append the result lines (JSON) to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config is not None:
        base = load_config(args.config, {"pretrained": False})
        num_classes = args.num_classes or load_datasets(base)["train"].num_classes
    else:
        base = TrainConfig(
            backbone=args.backbone, embedding_dim=args.embedding_dim, image_size=args.image_size,
            pretrained=False, classes_per_batch=args.classes_per_batch, per_class=args.per_class,
            gcl_iterations=args.gcl_iterations, heads=args.heads,
        )
        num_classes = args.num_classes or 100
    try:
        overrides = parse_assignments(args.set)
        taken = sorted(set(overrides) & set(SIDE_FIELDS))
        if taken:
            raise ConfigError(f"--set cannot change {', '.join(taken)}: the script sets "
                              f"{', '.join(SIDE_FIELDS)} itself (use --devices, --amp)")
        base = apply_overrides(base, overrides)
    except ConfigError as err:
        parser.error(str(err))
    for name in args.devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            continue
        device = torch.device(name)
        cfgs = {mode: apply_overrides(base, dict(zip(SIDE_FIELDS, (mode, name, args.amp), strict=True)))
                for mode in ("none", "gca")}
        if args.profile is not None:
            profile_iteration(cfgs["gca"], device, num_classes, args.profile)
        timings = time_modes(cfgs, device, num_classes, args.iterations, args.warmup)
        row = {"config": str(args.config) if args.config else None, "set": overrides, "device": str(device),
               "threads": torch.get_num_threads(), "backbone": base.backbone,
               "batch": f"{base.classes_per_batch}x{base.per_class}", "image_size": base.image_size,
               "D": base.embedding_dim, "K": base.gcl_iterations, "H": base.heads, "amp": args.amp,
               "metric_loss_only_s": round(timings["none"], 4), "gca_hng_s": round(timings["gca"], 4),
               "overhead_ratio": round(timings["gca"] / timings["none"], 3),
               "load_average": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(row))
        if args.out is not None:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
