"""Where the GCA-HNG iteration's extra time goes, operator by operator: torch.profiler's self CPU time
per ATen operator in the metric-loss-only and in the GCA-HNG iteration of one config, and the
difference, largest first, with the share of the matrix products and of the optimisers.

    python benchmarks/train_step_operators.py --config benchmarks/configs/digits_iteration.yaml --threads 1
    python benchmarks/train_step_operators.py --config benchmarks/configs/digits_iteration.yaml --threads 2 --shapes

``--shapes`` keeps one row per operator and input shapes. Times are per iteration and include the
profiler's own overhead (the GCA-HNG iteration makes about five times as many calls), so the
ratio of the totals is higher than ``benchmarks/train_step.py``'s.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from train_step import build

from gcahng.config import apply_overrides, load_config

#: Operators counted as matrix products and as optimiser work in the summary line.
MATRIX_PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm")
OPTIMISER = ("aten::_fused_adamw_", "Optimizer.step#AdamW.step", "Optimizer.zero_grad#AdamW.zero_grad")


def operator_times(cfg, num_classes: int, iterations: int, warmup: int,
                   shapes: bool) -> dict[str, tuple[float, float]]:
    """Self CPU milliseconds and calls per iteration of each operator (with its input shapes when ``shapes``)."""
    parts, images, labels = build(cfg, torch.device("cpu"), num_classes)
    C, m = cfg.classes_per_batch, cfg.per_class
    for _ in range(warmup):
        parts.step(images, labels, C, m)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=shapes) as prof:
        for _ in range(iterations):
            parts.step(images, labels, C, m)
    return {(f"{event.key} {event.input_shapes}" if shapes else event.key):
            (event.self_cpu_time_total / 1e3 / iterations, event.count / iterations)
            for event in prof.key_averages(group_by_input_shape=shapes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--shapes", action="store_true", help="one row per operator and input shapes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_config(args.config, {"pretrained": False})
    times = {mode: operator_times(apply_overrides(base, {"generator": mode, "device": "cpu"}), args.num_classes,
                                  args.iterations, args.warmup, args.shapes)
             for mode in ("none", "gca")}
    none, gca = ({key: ms for key, (ms, _) in times[mode].items()} for mode in ("none", "gca"))
    extra = {key: gca.get(key, 0.0) - none.get(key, 0.0) for key in none.keys() | gca.keys()}

    def share(names: tuple[str, ...]) -> float:
        return sum(value for key, value in extra.items() if key.split(" ")[0] in names)

    total = {"none": sum(none.values()), "gca": sum(gca.values())}
    print(f"{args.config}, {args.threads} thread(s), {args.iterations} iterations each, profiler self CPU time: "
          f"metric loss only {total['none']:.1f} ms, GCA-HNG {total['gca']:.1f} ms per iteration; of the "
          f"{total['gca'] - total['none']:.1f} ms more, matrix products {share(MATRIX_PRODUCTS):.1f} ms, "
          f"AdamW {share(OPTIMISER):.1f} ms")
    print("| operator | metric loss only (ms) | GCA-HNG (ms) | difference (ms) | GCA-HNG calls |")
    print("|---|---|---|---|---|")
    for key in sorted(extra, key=lambda k: -extra[k])[: args.rows]:
        calls = times["gca"].get(key, (0.0, 0.0))[1]
        print(f"| {key} | {none.get(key, 0.0):.2f} | {gca.get(key, 0.0):.2f} | {extra[key]:.2f} | {calls:g} |")


if __name__ == "__main__":
    main()
