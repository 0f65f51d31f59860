"""GCL forward + backward on the CPU, eager against ``torch.compile`` (inductor), at one training
config's sizes: the compile time, the number of compiled graphs and the median time per call of
each, alternated, in two variants.

    python benchmarks/gcl_compile.py --config benchmarks/configs/digits_iteration.yaml --threads 2

- ``as is``: the module as the training step calls it. Its structure checks (is the graph the
  complete row-major one, is ``edge_attr`` symmetric: ``torch.equal`` on tensors) depend on tensor
  values, so dynamo breaks the forward into several graphs there.
- ``checks hoisted``: the same module with those checks answered once, eagerly, for this graph
  (``GCL.pair_graph`` and ``complete_graph_size`` patched to return their answers), so the forward
  compiles into one graph. Eager runs under the same patches, so both sides skip the checks.

Training mode (``edge_dropout`` as the config has it); the loss is ``lambda.sum() + logits.sum()``.
Evaluation-mode outputs of the compiled module are checked against eager (float32, 1e-5) first.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from unittest import mock

import torch
from torch._dynamo.utils import counters
from train_step import build

import gcahng.graph.node_to_node as node_to_node
from gcahng.config import load_config
from gcahng.graph import build_batch_graph
from gcahng.graph.batch_graph import complete_graph_size


def hoisted_checks(gcl: torch.nn.Module, graph) -> contextlib.ExitStack:
    """A context in which ``gcl``'s structure checks return, without looking, their answers for ``graph``."""
    edges, size = gcl.pair_graph(graph), complete_graph_size(graph)
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(gcl, "pair_graph", lambda data: edges))
    stack.enter_context(mock.patch.object(node_to_node, "complete_graph_size", lambda data: size))
    return stack


def compare(gcl: torch.nn.Module, graph, iterations: int) -> tuple[float, int, float, float]:
    """(compile seconds, compiled graphs, eager ms, compiled ms) of forward + backward."""
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(gcl)

    def call(module) -> float:
        start = time.perf_counter()
        lam, logits = module(graph)
        (lam.sum() + logits.sum()).backward()
        return time.perf_counter() - start

    compile_s = call(compiled)  # the first call compiles the forward and the backward
    graphs = int(counters["stats"]["unique_graphs"])
    gcl.eval()
    with torch.no_grad():
        for want, got in zip(gcl(graph), compiled(graph), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    gcl.train()
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for i in range(iterations + 3):
        for name, module in (("eager", gcl), ("compiled", compiled)):
            elapsed = call(module)
            if i >= 3:
                times[name].append(elapsed)
    eager_ms, compiled_ms = (1e3 * statistics.median(times[name]) for name in ("eager", "compiled"))
    return compile_s, graphs, eager_ms, compiled_ms


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
    gcl = parts.generator.gcl
    for variant in ("as is", "checks hoisted"):
        with hoisted_checks(gcl, graph) if variant == "checks hoisted" else contextlib.nullcontext():
            compile_s, graphs, eager_ms, compiled_ms = compare(gcl, graph, args.iterations)
        print(f"{args.config}, {args.threads} thread(s), {variant}: compile {compile_s:.1f} s into {graphs} "
              f"graph(s); forward + backward eager {eager_ms:.2f} ms, compiled {compiled_ms:.2f} ms "
              f"(ratio {compiled_ms / eager_ms:.2f})", flush=True)


if __name__ == "__main__":
    main()
