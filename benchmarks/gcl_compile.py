"""GCL forward + backward on the CPU, eager against ``torch.compile`` (inductor), at one training
config's sizes: the compile time and the median time per call of each, alternated.

    python benchmarks/gcl_compile.py --config benchmarks/configs/digits_iteration.yaml --threads 2

Training mode (``edge_dropout`` as the config has it); the loss is ``lambda.sum() + logits.sum()``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from train_step import build

from gcahng.config import load_config
from gcahng.graph import build_batch_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, {"pretrained": False})
    parts, images, labels = build(cfg, torch.device("cpu"), args.num_classes)
    with torch.no_grad():
        z = parts.model(images)
    graph = build_batch_graph(z, labels, cfg.classes_per_batch, cfg.per_class)
    eager = parts.generator.gcl
    compiled = torch.compile(eager)

    def call(gcl) -> float:
        start = time.perf_counter()
        lam, logits = gcl(graph)
        (lam.sum() + logits.sum()).backward()
        return time.perf_counter() - start

    compile_s = call(compiled)  # the first call compiles the forward and the backward
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for i in range(args.iterations + 3):
        for name, gcl in (("eager", eager), ("compiled", compiled)):
            elapsed = call(gcl)
            if i >= 3:
                times[name].append(elapsed)
    eager_ms, compiled_ms = (1e3 * statistics.median(times[name]) for name in ("eager", "compiled"))
    print(f"{args.config}, {args.threads} thread(s): compile {compile_s:.1f} s; forward + backward "
          f"eager {eager_ms:.2f} ms, compiled {compiled_ms:.2f} ms (ratio {compiled_ms / eager_ms:.2f})")


if __name__ == "__main__":
    main()
