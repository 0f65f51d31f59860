"""Where one GCA-HNG training iteration spends its time: wall time per section of the step, the
number of operations of one GCL forward and backward and its trained parameters, gradient clipping
against torch's ``clip_grad_value_``, and the GCL's linear layers with their weights in cache and
evicted.
Feeds ``benchmarks/results/train_step_profile.md``.

    python benchmarks/train_step_sections.py --config benchmarks/configs/digits_iteration.yaml --threads 1
    python benchmarks/train_step_sections.py --config benchmarks/configs/digits_iteration.yaml --generator none

Sections are timed by wrapping the step's calls (its scope, the embedding network, the optimisers
and the clipping) in one process; a call made several times per iteration is numbered by its order
(the first correlate is the first pass, the second the generator pass).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from train_step import build

import gcahng.training.step as step_module
from gcahng.choices import GENERATOR_MODES
from gcahng.config import load_config
from gcahng.graph import build_batch_graph

SCOPE_CALLS = ("metric", "prepare", "correlate", "interpolate", "synthetic", "generator_loss", "backward")


class _Sections:
    """Seconds per section, summed over iterations; :meth:`wrap` times a callable."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()  # calls of each name in the current iteration

    def wrap(self, name: str, func):
        def timed(*args, **kwargs):
            self.calls[name] += 1
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[f"{name} {self.calls[name]}"] += time.perf_counter() - start
        return timed


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def gcl_operation_counts(parts, images: torch.Tensor, labels: torch.Tensor, C: int, m: int) -> tuple[int, int]:
    """ATen operations of one GCL forward (training mode, with autograd) and of its backward."""
    with torch.no_grad():
        z = parts.model(images)
    z.requires_grad_(True)
    graph = build_batch_graph(z, labels, C, m)
    with _CountOps() as forward:
        lam, logits = parts.generator.gcl(graph)
    loss = lam.sum() + logits.sum()
    with _CountOps() as backward:
        loss.backward()
    return forward.count, backward.count


def clip_times(module: torch.nn.Module, repeats: int) -> tuple[float, float]:
    """Median seconds of the step's clipping and of ``clip_grad_value_`` on ``module``'s gradients."""
    params = [p for p in module.parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    times: dict[str, list[float]] = {"ours": [], "torch": []}
    for _ in range(repeats):
        for name, clip in (("ours", lambda: step_module._clip(module, 10.0)),
                           ("torch", lambda: torch.nn.utils.clip_grad_value_(params, 10.0))):
            start = time.perf_counter()
            clip()
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["ours"]), statistics.median(times["torch"])


#: The GCL's linear layers at the digits sizes as (rows, in, out): 20 node rows, 210 pair rows,
#: D = 256, 4D = 1024.
DIGITS_GCL_LINEARS = ((20, 256, 256), (20, 256, 1024), (20, 1024, 256), (210, 256, 1024), (210, 1024, 256))


def cold_gemm_times(repeats: int = 200) -> list[tuple[str, float, float, float]]:
    """Median microseconds of the GCL's linear layers at the digits sizes (20 node rows, 210 pair rows)
    with their weights in cache (called back to back) and evicted (a 32 MB buffer written between
    calls, as the rest of a training iteration does), and GFLOP/s in cache."""
    evict = torch.zeros(8 * 2**20)
    rows = []
    for n, in_dim, out_dim in DIGITS_GCL_LINEARS:
        x, weight, bias = torch.randn(n, in_dim), torch.randn(out_dim, in_dim), torch.randn(out_dim)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for cold in (False, True):
                if cold:
                    evict.add_(1.0)
                start = time.perf_counter()
                torch.nn.functional.linear(x, weight, bias)
                times[cold].append(time.perf_counter() - start)
        hot = statistics.median(times[False])
        rows.append((f"{n} x {in_dim} -> {out_dim}", 1e6 * hot, 1e6 * statistics.median(times[True]),
                     2 * n * in_dim * out_dim / hot / 1e9))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--generator", choices=GENERATOR_MODES, help="override the config's generator mode "
                        "(none: the metric-loss-only iteration)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    if args.generator:
        cfg = dataclasses.replace(cfg, generator=args.generator)
    C, m = cfg.classes_per_batch, cfg.per_class
    parts, images, labels = build(cfg, torch.device("cpu"), args.num_classes)
    step = parts.step
    sections = _Sections()
    for name in SCOPE_CALLS:
        setattr(step._scope, name, sections.wrap(name, getattr(step._scope, name)))
    step.model.forward = sections.wrap("embedding network forward", step.model.forward)
    for name in ("embedding", "gcl", "classifier"):
        optimizer = getattr(step.optimizers, name)
        optimizer.step = sections.wrap(f"AdamW {name}", optimizer.step)
    step_module._clip = sections.wrap("clip", step_module._clip)

    for _ in range(args.warmup):
        step(images, labels, C, m)
    sections.seconds.clear()
    start = time.perf_counter()
    for _ in range(args.iterations):
        sections.calls.clear()
        step(images, labels, C, m)
    total = (time.perf_counter() - start) / args.iterations

    print(f"{args.config}, {args.threads} thread(s), {args.iterations} iterations: {1e3 * total:.1f} ms per iteration")
    print("| section (call number in the iteration) | ms |\n|---|---|")
    for name, seconds in sorted(sections.seconds.items(), key=lambda item: -item[1]):
        print(f"| {name} | {1e3 * seconds / args.iterations:.2f} |")
    print(f"| the rest | {1e3 * (total - sum(sections.seconds.values()) / args.iterations):.2f} |")
    forward, backward = gcl_operation_counts(parts, images, labels, C, m)
    trained = sum(p.numel() for p in parts.generator.gcl.parameters() if p.requires_grad)
    print(f"GCL operations (ATen, B = {C * m}): {forward} forward, {backward} backward; "
          f"{trained:,} trained parameters")
    ours, theirs = clip_times(parts.generator.gcl, repeats=200)
    print(f"clipping the GCL's gradients: {1e3 * ours:.2f} ms (one clamp_ each), "
          f"clip_grad_value_ {1e3 * theirs:.2f} ms")
    print("| linear layer | weights in cache (us) | weights evicted (us) | GFLOP/s in cache |\n|---|---|---|---|")
    for name, hot, cold, gflops in cold_gemm_times():
        print(f"| {name} | {hot:.0f} | {cold:.0f} | {gflops:.0f} |")


if __name__ == "__main__":
    main()
