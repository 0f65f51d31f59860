"""MAP@R on the unseen digits 5-9: trained runs vs the same network untrained vs raw pixels.

    for s in 0 1 2; do gcahng fit --seed $s --out runs/digits_s$s; done
    python benchmarks/digits_baselines.py runs/digits_s0 runs/digits_s1 runs/digits_s2

Each run is compared with its network as initialised by its seed, before training. Writes
benchmarks/results/digits_baselines.md: one row per run and, for several runs, the mean
and standard deviation (ddof=1). The quick start's goal (issue 16) as a check that exits 1
when missed: ``--require-mean 71 --require-each 69`` (MAP@R, %).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from gcahng.config import load_config
from gcahng.data import build_transforms, create_dataset
from gcahng.evaluation import PROTOCOLS, evaluate_leave_one_out
from gcahng.training.build import build_model, seed_everything

RESULTS = Path(__file__).parent / "results" / "digits_baselines.md"


def untrained_map_at_r(run_dir: Path) -> tuple[float, str]:
    """MAP@R of the run's network as :func:`build_model` initialises it under the run's seed."""
    cfg = load_config(run_dir / "config.yaml")
    test = create_dataset("digits", split="test", transform=build_transforms(False, cfg.image_size, cfg.resize_size))
    images = torch.stack([test[i][0] for i in range(len(test))])
    seed_everything(cfg.seed)
    net = build_model(cfg).eval()
    with torch.no_grad():
        metrics = evaluate_leave_one_out(net(images).numpy(), test.labels, PROTOCOLS["digits"].ks)
    return metrics.map_at_r, f"{cfg.backbone}, D={cfg.embedding_dim}"


def raw_pixels() -> tuple[float, float, int]:
    """Recall@1 and MAP@R of cosine nearest neighbours on the test images' pixels, and their count."""
    raw = create_dataset("digits", split="test")
    pixels = np.stack([np.asarray(raw.load_image(i), dtype=np.float32).ravel() for i in range(len(raw))])
    metrics = evaluate_leave_one_out(pixels, raw.labels, PROTOCOLS["digits"].ks)
    return metrics.recall[1], metrics.map_at_r, pixels.shape[1]


def summary(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished `gcahng fit` runs on digits")
    parser.add_argument("--require-mean", type=float, help="exit 1 unless the mean trained MAP@R (%%) reaches it")
    parser.add_argument("--require-each", type=float, help="exit 1 unless every run's MAP@R (%%) reaches it")
    args = parser.parse_args()
    rows, trained, untrained = [], [], []
    for run_dir in args.run_dirs:
        metrics = json.loads((run_dir / "test_metrics.json").read_text())["metrics"]
        seed = load_config(run_dir / "config.yaml").seed
        before, network = untrained_map_at_r(run_dir)
        trained.append(metrics["map@r"])
        untrained.append(before)
        rows.append(f"| {run_dir.name} (seed {seed}) | {100 * metrics['recall@1']:.1f} | "
                    f"{100 * metrics['map@r']:.1f} | {100 * before:.1f} |")
    pixel_r1, pixel_map, values = raw_pixels()
    lines = ["Digits 5-9 (unseen classes, 896 queries, leave-one-out); MAP@R of each run after and",
             f"before training ({network}), and of raw pixels ({values // 3}x3 values, cosine).", "",
             "| run | Recall@1 | MAP@R trained | MAP@R untrained |", "|---|---|---|---|", *rows]
    if len(rows) > 1:
        lines.append(f"| **mean ± sd over {len(rows)} runs** | | **{summary(trained)}** | {summary(untrained)} |")
    lines.append(f"| raw pixels | {100 * pixel_r1:.1f} | {100 * pixel_map:.1f} | |")
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n")
    missed = []
    if args.require_mean is not None and 100 * statistics.fmean(trained) < args.require_mean:
        missed.append(f"mean MAP@R {100 * statistics.fmean(trained):.1f} < {args.require_mean}")
    if args.require_each is not None and 100 * min(trained) < args.require_each:
        missed.append(f"lowest MAP@R {100 * min(trained):.1f} < {args.require_each}")
    if missed:
        raise SystemExit("goal missed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
