"""The GCL's linear layers on the CPU through MKL (``F.linear``, what PyTorch uses for float32)
against oneDNN with the weight prepacked once (``torch.ops.mkldnn._linear_pointwise``, what
inductor's weight prepacking uses) and prepacked on every call. A training step changes every
weight, so each GCL pass would pay the prepacking once per weight: the per-call column is the
one that counts for training.

    python benchmarks/linear_backends.py --threads 2

Median microseconds per call and GFLOP/s, one line per shape (rows x in -> out), float32, the
three backends alternated call by call.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from train_step_sections import DIGITS_GCL_LINEARS


def _median_us(calls: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(repeats + 20):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if i >= 20:
                times[name].append(time.perf_counter() - start)
    return {name: 1e6 * statistics.median(values) for name, values in times.items()}


def _backends(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    linear, reorder = torch.ops.mkldnn._linear_pointwise, torch.ops.mkldnn._reorder_linear_weight
    packed = reorder(weight, None)
    return {
        "MKL": lambda: F.linear(x, weight, bias),
        "oneDNN prepacked once": lambda: linear(x, packed, bias, "none", [], ""),
        "oneDNN prepacked per call": lambda: linear(x, reorder(weight, None), bias, "none", [], ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s), median us per call (GFLOP/s)")
    for rows, fan_in, fan_out in DIGITS_GCL_LINEARS:
        x, weight, bias = torch.randn(rows, fan_in), torch.randn(fan_out, fan_in), torch.randn(fan_out)
        calls = _backends(x, weight, bias)
        for name, call in calls.items():  # the same values, to float32 rounding
            torch.testing.assert_close(call(), calls["MKL"](), rtol=1e-4, atol=1e-3, msg=name)
        us = _median_us(calls, args.repeats)
        flops = 2 * rows * fan_in * fan_out
        cells = ", ".join(f"{name} {t:.0f} ({flops / t / 1e3:.0f})" for name, t in us.items())
        print(f"{rows} x {fan_in} -> {fan_out}: {cells}")


if __name__ == "__main__":
    main()
