"""The GPU benchmark of one machine, in one run that ends in a few minutes: writes a
Markdown report (default ``benchmarks/results/gpu.md``) and prints each row as JSON.

    python benchmarks/gpu_check.py                   # on a CUDA machine (benchmarks/gpu.sh runs this)
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu.md   # tiny sizes, any device: the suite runs this

Measures:

(a) one full training iteration (all losses, all three optimisers) on the CPU and on CUDA
    from the same weights and batch, float32 with TF32 off and dropout 0 (dropout masks come
    from the device's own generator): the largest relative difference of each loss and of
    the parameters after the step (goal: 1e-4);
(b) one bfloat16-autocast iteration: every loss finite;
(c) time and peak memory per iteration at ResNet-50, 224 px, 27 x 3, D = 512, K = 2, with
    ``generator: none`` and ``gca``, and the overhead ratio (goal: at most 1.15x);
(d) the GCL step alone (batch graph + GCL + CACAI, forward and backward) at B = 81, 160,
    320, 640;
(e) the same with ``torch.compile`` on the GCL, where it compiles.

Without CUDA the "device" side is the CPU too (only ``--dry-run`` makes sense then).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gcahng.config import TrainConfig
from gcahng.training.build import build_training_parts

RESULTS = Path(__file__).parent / "results" / "gpu.md"


@dataclass(frozen=True)
class Sizes:
    """What each measurement runs at."""

    backbone: str
    image_size: int
    classes: int  # C
    per_class: int  # m
    dim: int  # D
    iterations: int  # timed iterations after the warm-up ones
    warmup: int
    equality_backbone: str
    equality_image_size: int
    equality_classes: int
    gcl_batches: tuple[tuple[int, int], ...]  # (C, m) of the GCL-alone rows
    compile_batches: int  # how many of them (e) compiles: each size compiles anew
    compile_backend: str


FULL = Sizes("resnet50", 224, 27, 3, 512, 10, 3, "resnet50", 224, 8,
             ((27, 3), (40, 4), (80, 4), (160, 4)), 2, "inductor")
DRY = Sizes("tiny_cnn", 32, 4, 2, 32, 1, 1, "tiny_cnn", 32, 4, ((4, 2), (8, 2)), 2, "aot_eager")


def _config(sizes: Sizes, device: torch.device, generator: str = "gca", **extra) -> TrainConfig:
    values = dict(
        backbone=sizes.backbone, image_size=sizes.image_size, embedding_dim=sizes.dim, pretrained=False,
        classes_per_batch=sizes.classes, per_class=sizes.per_class, gcl_iterations=2, heads=4 if sizes.dim >= 64 else 2,
        generator=generator, device=str(device),
    )
    values.update(extra)
    return TrainConfig(**values)


def _batch(cfg: TrainConfig, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and chunk-major labels (chunk t lists classes 0..C-1)."""
    gen = torch.Generator().manual_seed(seed)
    C, m = cfg.classes_per_batch, cfg.per_class
    images = torch.randn(C * m, 3, cfg.image_size, cfg.image_size, generator=gen)
    return images.to(device), torch.arange(C).repeat(m).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b| / |b|`` in the Frobenius norm (0 when both are 0)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(b.norm())
    return float((a - b).norm()) / scale if scale > 0 else float((a - b).norm())


def check_equality(sizes: Sizes, device: torch.device) -> dict:
    """(a): one iteration from the same start on the CPU and on ``device``."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = _config(sizes, device, backbone=sizes.equality_backbone, image_size=sizes.equality_image_size,
                  classes_per_batch=sizes.equality_classes, dropout=0.0)
    runs = {}
    for target in (torch.device("cpu"), device):
        torch.manual_seed(0)
        parts = build_training_parts(cfg, num_classes=100, device=target)
        images, labels = _batch(cfg, target)
        losses = parts.step(images, labels, cfg.classes_per_batch, cfg.per_class)
        params = {f"{owner}.{name}": p.detach().cpu() for owner, module in
                  (("model", parts.model), ("generator", parts.generator)) for name, p in module.named_parameters()}
        runs[target.type if target.type == "cpu" else "device"] = (losses, params)
    (cpu_losses, cpu_params), (dev_losses, dev_params) = runs["cpu"], runs.get("device", runs["cpu"])
    loss_diff = {k: abs(dev_losses[k] - v) / max(abs(v), 1e-12) for k, v in cpu_losses.items()}
    param_diff = max(_relative(dev_params[k], v) for k, v in cpu_params.items())
    worst = max([*loss_diff.values(), param_diff])
    return {"check": "a: CPU vs device, one iteration", "backbone": cfg.backbone, "image_size": cfg.image_size,
            "batch": f"{cfg.classes_per_batch}x{cfg.per_class}", "losses_max_rel": max(loss_diff.values()),
            "params_max_rel": param_diff, "worst_loss": max(loss_diff, key=loss_diff.get),
            "pass": bool(worst <= 1e-4)}


def check_bf16(sizes: Sizes, device: torch.device) -> dict:
    """(b): one bfloat16-autocast iteration; every loss finite."""
    cfg = _config(sizes, device, amp=True)
    torch.manual_seed(0)
    parts = build_training_parts(cfg, num_classes=100, device=device)
    images, labels = _batch(cfg, device)
    losses = parts.step(images, labels, cfg.classes_per_batch, cfg.per_class)
    return {"check": "b: bfloat16 autocast iteration", "losses": {k: round(v, 5) for k, v in losses.items()},
            "pass": all(math.isfinite(v) for v in losses.values())}


def _timed(fn: Callable[[], object], device: torch.device, iterations: int, warmup: int) -> tuple[float, float | None]:
    """Median seconds per call and peak device memory in MiB (CUDA only)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return sorted(times)[len(times) // 2], peak


def time_iterations(sizes: Sizes, device: torch.device) -> list[dict]:
    """(c): time and peak memory per iteration, metric loss alone vs GCA-HNG."""
    rows, seconds = [], {}
    for mode in ("none", "gca"):
        cfg = _config(sizes, device, generator=mode)
        torch.manual_seed(0)
        parts = build_training_parts(cfg, num_classes=100, device=device)
        images, labels = _batch(cfg, device)
        seconds[mode], peak = _timed(lambda parts=parts, images=images, labels=labels, cfg=cfg: parts.step(
            images, labels, cfg.classes_per_batch, cfg.per_class), device, sizes.iterations, sizes.warmup)
        rows.append({"check": "c: training iteration", "generator": mode, "backbone": cfg.backbone,
                     "image_size": cfg.image_size, "batch": f"{cfg.classes_per_batch}x{cfg.per_class}",
                     "D": cfg.embedding_dim, "K": cfg.gcl_iterations, "seconds": round(seconds[mode], 4),
                     "peak_mib": None if peak is None else round(peak, 1)})
    rows.append({"check": "c: overhead ratio gca / none", "ratio": round(seconds["gca"] / seconds["none"], 3),
                 "goal": 1.15})
    return rows


def gcl_step(sizes: Sizes, device: torch.device, compiled: bool) -> list[dict]:
    """(d) and (e): batch graph + GCL + CACAI forward and backward on random embeddings."""
    rows = []
    for C, m in sizes.gcl_batches[:sizes.compile_batches] if compiled else sizes.gcl_batches:
        cfg = _config(sizes, device, classes_per_batch=C, per_class=m)
        torch.manual_seed(0)
        generator = build_training_parts(cfg, num_classes=max(C, 2), device=device).generator
        if compiled:
            try:
                generator.gcl = torch.compile(generator.gcl, backend=sizes.compile_backend)
            except Exception as err:  # reported, not raised: (e) is "where it compiles"
                return [{"check": "e: torch.compile on the GCL", "error": f"{type(err).__name__}: {err}"[:300]}]
        z = torch.randn(C * m, cfg.embedding_dim, device=device, requires_grad=True)
        labels = torch.arange(C, device=device).repeat(m)
        rng = torch.Generator().manual_seed(0)

        def step(generator=generator, z=z, labels=labels, C=C, m=m, rng=rng) -> None:
            graph, lam, logits = generator.correlate(z, labels, C, m)
            negatives = generator.interpolate(z, lam, 0.5, labels, C, m, rng, graph)
            (negatives.embeddings.square().mean() + logits.square().mean()).backward()

        try:
            seconds, peak = _timed(step, device, sizes.iterations, sizes.warmup)
        except Exception as err:  # a compile failure shows up at the first call
            if not compiled:
                raise
            return [{"check": "e: torch.compile on the GCL", "error": f"{type(err).__name__}: {err}"[:300]}]
        rows.append({"check": "e: GCL step, torch.compile" if compiled else "d: GCL step", "B": C * m,
                     "batch": f"{C}x{m}", "D": cfg.embedding_dim, "K": cfg.gcl_iterations,
                     "seconds": round(seconds, 5), "peak_mib": None if peak is None else round(peak, 1)})
    return rows


def _markdown(rows: list[dict], device: torch.device, command: str) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    lines = [f"# GPU benchmark ({name})", "",
             f"`{command}`, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    for check in dict.fromkeys(row["check"] for row in rows):
        group = [row for row in rows if row["check"] == check]
        keys = list(dict.fromkeys(k for row in group for k in row if k != "check"))
        lines += [f"## {check}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in group]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, any device (tested in the suite)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the Markdown report")
    parser.add_argument("--skip-compile", action="store_true", help="leave out (e)")
    args = parser.parse_args()
    sizes = DRY if args.dry_run else FULL
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cpu" and not args.dry_run:
        parser.error("no CUDA device: only --dry-run runs on the CPU")
    rows = [check_equality(sizes, device), check_bf16(sizes, device), *time_iterations(sizes, device),
            *gcl_step(sizes, device, compiled=False)]
    if not args.skip_compile:
        rows += gcl_step(sizes, device, compiled=True)
    for row in rows:
        print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/gpu_check.py" + (" --dry-run" if args.dry_run else "")
    args.out.write_text(_markdown(rows, device, command) + f"\nLoad average: {os.getloadavg()}\n")
    failed = [row["check"] for row in rows if row.get("pass") is False]
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
