"""Speed and peak memory of gcahng.evaluation against pytorch-metric-learning's AccuracyCalculator.

Synthetic SOP-sized test set (default 60,502 x 512, 11,316 classes of 2-12 items), three
runs, each in its own process so that its peak memory (ru_maxrss) is its own:

* ``ours-shared``: gcahng, Recall@1 + MAP@R + R-Precision (the metrics both tools compute);
* ``ours-sop``:    gcahng, the full SOP protocol (Recall@1/10/100/1000 + MAP@R + R-Precision);
* ``pml-shared``:  AccuracyCalculator(precision_at_1, mean_average_precision_at_r,
  r_precision, k="max_bin_count").

Time is wall time of the evaluation call only (data already in memory). Writes a markdown
table to benchmarks/results/eval_speed.md and prints it.

    python benchmarks/eval_speed.py            # SOP size, a few minutes
    python benchmarks/eval_speed.py --n 5000   # quick try
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SOP_ITEMS, SOP_CLASSES = 60_502, 11_316
RUNS = ("ours-shared", "ours-sop", "pml-shared")
RESULTS = Path(__file__).resolve().parent / "results" / "eval_speed.md"


def synthetic_sop(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 embeddings and (n,) labels: n * 11316/60502 classes of 2-12 items each."""
    rng = np.random.default_rng(seed)
    num_classes = max(1, round(n * SOP_CLASSES / SOP_ITEMS))
    sizes = np.full(num_classes, 2)
    for _ in range(n - sizes.sum()):  # spread the rest over classes still below 12
        open_classes = np.flatnonzero(sizes < 12)
        sizes[rng.choice(open_classes)] += 1
    labels = rng.permutation(np.repeat(np.arange(num_classes), sizes))
    centres = rng.standard_normal((num_classes, dim)).astype(np.float32)
    embeddings = centres[labels] + 2.5 * rng.standard_normal((len(labels), dim), dtype=np.float32)
    return embeddings, labels


def run_child(which: str, data: Path) -> dict:
    """Runs one side in this process and returns its time, peak memory and metrics."""
    embeddings, labels = np.load(data / "embeddings.npy"), np.load(data / "labels.npy")
    if which == "pml-shared":
        from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

        calculator = AccuracyCalculator(
            include=("precision_at_1", "mean_average_precision_at_r", "r_precision"), k="max_bin_count"
        )
        # cosine ranking, as ours: AccuracyCalculator ranks by L2 distance, so hand it unit rows
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)

        def evaluate() -> dict:
            r = calculator.get_accuracy(embeddings, labels)
            return {
                "recall@1": r["precision_at_1"],
                "map@r": r["mean_average_precision_at_r"],
                "r_precision": r["r_precision"],
            }

    else:
        from gcahng.evaluation import PROTOCOLS, evaluate_leave_one_out

        ks = (1,) if which == "ours-shared" else PROTOCOLS["sop"].ks

        def evaluate() -> dict:
            return evaluate_leave_one_out(embeddings, labels, ks).to_dict()

    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    metrics = evaluate()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "before_mb": before_mb, "metrics": metrics}


def versions() -> str:
    import faiss
    import pytorch_metric_learning
    import torch

    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, faiss {faiss.__version__}, "
        f"torch {torch.__version__}, pytorch-metric-learning {pytorch_metric_learning.__version__}"
    )


def report(n: int, num_classes: int, dim: int, results: dict[str, dict], load: tuple, load_after: tuple) -> str:
    ours, full, pml = (results[name] for name in RUNS)
    shared = ("recall@1", "map@r", "r_precision")
    gap = max(abs(ours["metrics"][k] - pml["metrics"][k]) for k in shared)
    time_ratio = ours["seconds"] / pml["seconds"]
    peak_ratio = ours["peak_mb"] / pml["peak_mb"]
    growth_ratio = (ours["peak_mb"] - ours["before_mb"]) / (pml["peak_mb"] - pml["before_mb"])
    full_ratio = full["seconds"] / pml["seconds"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        "| run | metrics | wall time (s) | peak RSS (MB) | RSS growth during the call (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, what in zip(RUNS, ("R@1, MAP@R, RP", "R@1/10/100/1000, MAP@R, RP", "P@1, MAP@R, RP"), strict=False):
        r = results[name]
        rows.append(
            f"| {name} | {what} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['peak_mb'] - r['before_mb']:.0f} |"
        )
    full_metrics = ", ".join(
        f"{k} {100 * v:.2f}" for k, v in full["metrics"].items() if k.startswith(("recall", "map", "r_p"))
    )
    return "\n".join(
        [
            "# Evaluation speed: gcahng.evaluation vs AccuracyCalculator",
            "",
            f"Synthetic SOP-sized test set: {n} x {dim} float32, {num_classes} classes of 2-12 items, leave-one-out.",
            f"Machine: {os.cpu_count()} CPUs, {platform.machine()}; {versions()}.",
            f"Load average (1, 5, 15 min) before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}.",
            "",
            *rows,
            "",
            f"- Shared metrics, time ours / AccuracyCalculator: {time_ratio:.2f}x "
            f"(target <= 0.8x: {verdict(time_ratio <= 0.8)})",
            f"- Shared metrics, peak RSS ours / AccuracyCalculator: {peak_ratio:.3f}x "
            f"(target <= 0.5x: {verdict(peak_ratio <= 0.5)}); growth during the call: {growth_ratio:.3f}x",
            f"- Full SOP protocol / AccuracyCalculator's shared metrics: {full_ratio:.2f}x "
            f"(target <= 1.5x: {verdict(full_ratio <= 1.5)})",
            f"- Largest difference on the shared metrics: {gap:.1e}",
            f"- Full protocol values (%): {full_metrics}",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=SOP_ITEMS, help="number of test items (default: SOP's 60,502)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.data)))
        return

    embeddings, labels = synthetic_sop(args.n, args.dim, args.seed)
    load = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        np.save(data / "embeddings.npy", embeddings)
        np.save(data / "labels.npy", labels)
        for name in RUNS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, "--data", str(data)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name}: {results[name]['seconds']:.1f} s", file=sys.stderr)
    text = report(len(labels), len(np.unique(labels)), args.dim, results, load, os.getloadavg())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
