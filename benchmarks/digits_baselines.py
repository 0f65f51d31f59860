"""MAP@R on the unseen digits 5-9: a trained run vs the same network untrained vs raw pixels.

    gcahng fit --out runs/digits && python benchmarks/digits_baselines.py runs/digits

Writes benchmarks/results/digits_baselines.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gcahng.config import load_config
from gcahng.data import build_transforms, create_dataset
from gcahng.evaluation import PROTOCOLS, evaluate_leave_one_out
from gcahng.models import create_embedding_model

RESULTS = Path(__file__).parent / "results" / "digits_baselines.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished `gcahng fit` run on digits")
    args = parser.parse_args()
    cfg = load_config(args.run_dir / "config.yaml")
    trained = json.loads((args.run_dir / "test_metrics.json").read_text())["metrics"]

    ks = PROTOCOLS["digits"].ks
    test = create_dataset("digits", split="test", transform=build_transforms(False, cfg.image_size, cfg.resize_size))
    images = torch.stack([test[i][0] for i in range(len(test))])
    torch.manual_seed(cfg.seed)
    untrained_net = create_embedding_model(cfg.backbone, cfg.embedding_dim, pretrained=False,
                                           image_size=cfg.image_size, resize_size=cfg.resize_size).eval()
    with torch.no_grad():
        untrained = evaluate_leave_one_out(untrained_net(images).numpy(), test.labels, ks)
    raw = create_dataset("digits", split="test")
    pixels = np.stack([np.asarray(raw.load_image(i), dtype=np.float32).ravel() for i in range(len(raw))])
    raw_pixels = evaluate_leave_one_out(pixels, raw.labels, ks)

    rows = [("trained (`gcahng fit`, " + str(args.run_dir.name) + ")", trained["recall@1"], trained["map@r"]),
            (f"same network untrained ({cfg.backbone}, D={cfg.embedding_dim}, seed {cfg.seed})",
             untrained.recall[1], untrained.map_at_r),
            (f"raw pixels ({pixels.shape[1] // 3}x3 values, cosine)", raw_pixels.recall[1], raw_pixels.map_at_r)]
    table = "\n".join(["Digits 5-9 (unseen classes, 896 queries, leave-one-out)", "",
                       "| embedding | Recall@1 | MAP@R |", "|---|---|---|",
                       *(f"| {name} | {100 * r1:.1f} | {100 * mapr:.1f} |" for name, r1, mapr in rows)])
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n")


if __name__ == "__main__":
    main()
