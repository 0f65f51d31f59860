"""bfloat16 autocast (``--amp``) on the CPU against float32, both measured alternately in one process:

- the GCL step of ``benchmarks/gcl_step.py`` (batch graph + GCL + CACAI, forward and backward,
  evaluation mode), with the largest difference of lambda, node logits and negatives;
- one training iteration of a config (``benchmarks/train_step.py``'s, GCA-HNG and metric loss only).

    python benchmarks/amp_cpu.py                   # B = 81 (27 x 3), D = 512, K = 2, H = 4; digits iteration

Writes ``benchmarks/results/amp_cpu.md``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from pathlib import Path

import torch
from train_step import time_modes

from gcahng.cacai import cacai
from gcahng.config import apply_overrides, load_config
from gcahng.graph import GCL, build_batch_graph
from gcahng.hyperparameters import GCLConfig

RESULTS = Path(__file__).parent / "results" / "amp_cpu.md"
DIGITS = Path(__file__).parent / "configs" / "digits_iteration.yaml"


def gcl_step_times(C: int, m: int, D: int, K: int, H: int, repeats: int) -> tuple[dict[str, float], float]:
    """Median seconds of the GCL step in float32 and under bfloat16 autocast, and the largest
    absolute difference of their outputs."""
    torch.manual_seed(0)
    gcl = GCL(D, 100, GCLConfig(iterations=K, heads=H)).eval()
    labels = torch.arange(C).repeat(m)
    z0 = torch.randn(C * m, D)

    def step(amp: bool) -> list[torch.Tensor]:
        z = z0.clone().requires_grad_(True)
        graph = build_batch_graph(z, labels, C, m)
        with torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            lam, logits = gcl(graph)
        neg = cacai(z, lam, 0.9, labels, C, m, graph=graph, generator=torch.Generator().manual_seed(0))
        (lam.mean() + logits.logsumexp(1).mean() + neg.embeddings.pow(2).mean()).backward()
        return [lam.detach(), logits.detach(), neg.embeddings.detach()]

    outputs = {mode: step(mode == "bfloat16") for mode in ("float32", "bfloat16")}  # also the warm-up
    diff = max(float((a - b).abs().max()) for a, b in zip(*outputs.values(), strict=True))
    times: dict[str, list[float]] = {mode: [] for mode in outputs}
    for _ in range(repeats):
        for mode in outputs:
            start = time.perf_counter()
            step(mode == "bfloat16")
            times[mode].append(time.perf_counter() - start)
    return {mode: statistics.median(t) for mode, t in times.items()}, diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=27)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--gcl-iterations", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", type=Path, default=DIGITS, help="training config of the iteration")
    parser.add_argument("--num-classes", type=int, default=40, help="classifier classes (digits: 40)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = (args.classes, args.per_class, args.dim, args.gcl_iterations, args.heads)
    gcl, diff = gcl_step_times(*shape, args.repeats)
    base = load_config(args.config, {"pretrained": False, "device": "cpu"})
    configs = {(mode, amp): apply_overrides(base, {"generator": mode, "amp": amp})
               for amp in (False, True) for mode in ("none", "gca")}
    iteration = time_modes(configs, torch.device("cpu"), args.num_classes, args.iterations, warmup=3)
    C, m, D, K, H = shape
    lines = [
        f"bfloat16 autocast on the CPU ({torch.get_num_threads()} threads; both precisions alternate in one "
        f"process; 1-minute load average at the end {os.getloadavg()[0]:.2f})",
        "",
        "| measurement | float32 (s) | bfloat16 autocast (s) | bfloat16 / float32 |",
        "|---|---|---|---|",
        f"| GCL step, B = {C * m} ({C} x {m}), D = {D}, K = {K}, H = {H}, median of {args.repeats} "
        f"| {gcl['float32']:.3f} | {gcl['bfloat16']:.3f} | {gcl['bfloat16'] / gcl['float32']:.2f} |",
        *(
            f"| {args.config.stem} iteration, {label}, median of {args.iterations} | {iteration[(mode, False)]:.4f} "
            f"| {iteration[(mode, True)]:.4f} | {iteration[(mode, True)] / iteration[(mode, False)]:.2f} |"
            for mode, label in (("gca", "GCA-HNG"), ("none", "metric loss only"))
        ),
        "",
        f"GCL step: largest absolute difference of lambda, node logits and negatives, bfloat16 vs float32: {diff:.2e}.",
        f"GCA-HNG / metric-only ratio of the iteration: {iteration[('gca', False)] / iteration[('none', False)]:.2f} "
        f"in float32, {iteration[('gca', True)] / iteration[('none', True)]:.2f} under bfloat16 autocast.",
    ]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
