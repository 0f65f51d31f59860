"""Forward + backward of batch graph + GCL + CACAI on the CPU: gcahng vs a straightforward
dense implementation of the same equations that, like the authors' release, computes all B^2
ordered edges and projects the gathered per-edge endpoint copies (node attention q/k/v on E
copies, edge attention k/v on 2E copies). gcahng computes each symmetric edge once per unordered
pair (the reference layers preserve symmetry).

    python benchmarks/gcl_step.py                          # B = 81 (27 x 3), D = 512, K = 2, H = 4
    python benchmarks/gcl_step.py --sizes 27x3 40x4 80x4   # B = 81, 160, 320
    python benchmarks/gcl_step.py --mode train             # training mode (batch statistics), dropout 0

Each implementation runs in its own process; peak memory is the growth of the process's
peak RSS over the RSS after the model and inputs were built, with glibc's mmap threshold
fixed (MALLOC_MMAP_THRESHOLD_) so that freed tensors leave the RSS instead of staying in the
heap's high-water mark. Both run in evaluation mode (or in training mode with dropout 0), so
their outputs must agree: lambda, node logits, the negatives and the gradient of the
embeddings are compared. Results go to benchmarks/results/gcl_step.md (``--out``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gcahng.cacai import cacai
from gcahng.graph import GCL, build_batch_graph
from gcahng.hyperparameters import GCLConfig

RESULTS = Path(__file__).parent / "results" / "gcl_step.md"


def _gelu_norm(norm: torch.nn.LayerNorm, x: Tensor) -> Tensor:
    return F.layer_norm(F.gelu(x), norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def dense_gcl(gcl: GCL, z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The same equations as :class:`GCL` written densely with plain tensor ops (using GCL's
    parameters), projecting gathered per-edge copies of the node vectors."""
    B, D = z.shape
    src = torch.arange(B).repeat_interleave(B)  # e = i*B + j: source i, target j
    dst = torch.arange(B).repeat(B)
    u = z - z.mean(1, keepdim=True)
    u = u / u.norm(dim=1, keepdim=True)
    w = (u[src] * u[dst])  # (E, D)
    cross = (labels[src] != labels[dst]).view(B, B, 1)  # [i, j]
    h = gcl.reduce(z)
    for layer in gcl.layers:
        nu, eu = layer.node_update, layer.edge_update
        att, H = nu.node_to_node, nu.node_to_node.heads
        d = D // H
        norm = lambda x, nu=nu: _gelu_norm(nu.norm.norm, x)  # noqa: E731
        hs, hd = h[src], h[dst]  # (E, D) gathered copies
        q = att.lin_q(hd).view(B, B, H, d)  # query of the target j, per edge
        k = att.lin_k(hs).view(B, B, H, d)
        v = att.lin_v(hs).view(B, B, H, d)
        s = (q * k).sum(-1) / math.sqrt(d)  # (B_i, B_j, H)
        s = s.masked_fill(~cross, float("-inf"))
        logits = torch.cat([s, s.new_zeros(1, B, H)], dim=0)  # zero slot
        a = logits.softmax(dim=0)[:B]  # over sources i
        o = att.lin_out((a.unsqueeze(-1) * v).sum(0).reshape(B, D))
        h = norm(h + o)
        g = F.gelu(nu.edge_to_node.lin(w)).view(B, B, D).sum(1)  # edges leaving i
        h = norm(h + g)
        h = norm(h + nu.ffn[2](F.gelu(nu.ffn[0](h))))
        ea = eu.node_to_edge
        n = F.gelu(ea.lin_node(h))
        ns, nd = n[src], n[dst]  # (E, D) each: the 2E gathered copies
        qe = ea.lin_q(w)
        ks, kd, vs, vd = ea.lin_k(ns), ea.lin_k(nd), ea.lin_v(ns), ea.lin_v(nd)
        alpha = torch.stack([(qe * ks).sum(-1), (qe * kd).sum(-1)], -1).div(math.sqrt(D)).softmax(-1)
        alpha = ea.dropout(alpha)
        w = _gelu_norm(eu.norm.norm, alpha[:, :1] * vs + alpha[:, 1:] * vd + w)
        ffn = eu.ffn[2](_gelu_norm(eu.ffn[1].norm, eu.ffn[0](w)))  # W_4 LN_4D(GELU(W_3 w))
        w = _gelu_norm(eu.norm.norm, w + ffn)
    lam = torch.sigmoid(gcl.edge_readout(gcl.edge_bn(w)))
    return lam, gcl.node_classifier(gcl.node_bn(h))


def run_one(impl: str, C: int, m: int, D: int, K: int, H: int, repeats: int, mode: str, out_dir: str) -> dict:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    gcl = GCL(D, 100, GCLConfig(iterations=K, heads=H, dropout=0.0))  # no dropout, so outputs can be compared
    gcl.train(mode == "train")
    labels = torch.arange(C).repeat(m)
    z0 = torch.randn(C * m, D)
    layout_graph = build_batch_graph(z0, labels, C, m)  # the edge layout both implementations produce lam in

    def step() -> tuple[Tensor, Tensor, Tensor]:
        z = z0.clone().requires_grad_(True)
        if impl == "ours":
            lam, logits = gcl(build_batch_graph(z, labels, C, m))
        else:
            lam, logits = dense_gcl(gcl, z, labels)
        neg = cacai(z, lam, 0.9, labels, C, m, graph=layout_graph, generator=torch.Generator().manual_seed(0))
        (lam.mean() + logits.logsumexp(1).mean() + neg.embeddings.pow(2).mean()).backward()
        return lam.detach(), logits.detach(), neg.embeddings.detach(), z.grad

    base_rss_kb = _current_rss_kb()
    outputs = step()  # warm-up, also gives the outputs to compare
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.save(outputs, Path(out_dir) / f"{impl}.pt")
    return {"impl": impl, "median_s": statistics.median(times), "times_s": times,
            "median_cpu_s": statistics.median(cpu_times),
            "peak_mib": (peak_kb - base_rss_kb) / 1024}


def _current_rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found")


def _compare(size: str, a: argparse.Namespace, out_dir: str) -> dict:
    """Both implementations at one ``C x m`` batch, each in its own process (only gcahng above
    ``--dense-max-batch``)."""
    C, m = (int(v) for v in size.split("x"))
    impls = ("ours", "dense") if a.dense_max_batch is None or C * m <= a.dense_max_batch else ("ours",)
    results: dict = {"B": C * m, "size": f"{C} x {m}", "dense": None}
    for impl in impls:
        out = subprocess.run([sys.executable, __file__, "--impl", impl, "--sizes", size, "--dim", str(a.dim),
                              "--iterations", str(a.iterations), "--heads", str(a.heads), "--repeats",
                              str(a.repeats), "--mode", a.mode, "--out-dir", out_dir],
                             check=True, capture_output=True, text=True,
                             env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
        results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
    if results["dense"] is not None:
        ours, dense = (torch.load(Path(out_dir) / f"{i}.pt") for i in ("ours", "dense"))
        results["max_diff"] = max(float((x - y).abs().max()) for x, y in zip(ours, dense, strict=True))
    return results


def _row(r: dict) -> str:
    o, d = r["ours"], r["dense"]
    if d is None:
        return (f"| {r['B']} ({r['size']}) | {o['median_s']:.3f} | not run | | {o['median_cpu_s']:.3f} | not run | "
                f"| {o['peak_mib']:.0f} | not run | | |")
    ratio = {k: o[k] / d[k] for k in ("median_s", "median_cpu_s", "peak_mib")}
    return (f"| {r['B']} ({r['size']}) | {o['median_s']:.3f} | {d['median_s']:.3f} | **{ratio['median_s']:.2f}** "
            f"| {o['median_cpu_s']:.3f} | {d['median_cpu_s']:.3f} | {ratio['median_cpu_s']:.2f} "
            f"| {o['peak_mib']:.0f} | {d['peak_mib']:.0f} | **{ratio['peak_mib']:.2f}** | {r['max_diff']:.1e} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["27x3"], help="batches C x m, e.g. 27x3 40x4 80x4")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--mode", choices=["eval", "train"], default="eval",
                   help="evaluation mode, or training mode (batch statistics) with dropout 0")
    p.add_argument("--out", type=Path, default=RESULTS, help="the Markdown table (default: %(default)s)")
    p.add_argument("--dense-max-batch", type=int, help="run the dense implementation only up to this B")
    p.add_argument("--impl", choices=["ours", "dense"], help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.impl:
        C, m = (int(v) for v in a.sizes[0].split("x"))
        print(json.dumps(run_one(a.impl, C, m, a.dim, a.iterations, a.heads, a.repeats, a.mode, a.out_dir)))
        return
    with tempfile.TemporaryDirectory() as out_dir:
        rows = [_compare(size, a, out_dir) for size in a.sizes]
    load = os.getloadavg()
    worst = max(r.get("max_diff", 0.0) for r in rows)
    table = "\n".join([
        f"GCL step benchmark: graph + GCL + CACAI forward+backward, D = {a.dim}, K = {a.iterations}, "
        f"H = {a.heads}, {a.mode} mode, dropout 0, CPU, {os.environ.get('BENCH_THREADS', '2')} threads, median of "
        f"{a.repeats}; 1-minute load average at the end {load[0]:.2f}. gcahng computes each unordered pair once; "
        "dense computes all B^2 ordered edges with gathered projections, as the release does.",
        "",
        "| B (C x m) | gcahng wall (s) | dense wall (s) | ratio | gcahng CPU (s) | dense CPU (s) | ratio "
        "| gcahng peak (MiB) | dense peak (MiB) | ratio | largest difference |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(r) for r in rows),
        "",
        "Largest difference: the largest absolute difference of lambda, node logits, negatives and the gradient "
        f"of the embeddings ({'same outputs' if worst < 1e-4 else 'OUTPUTS DIFFER'}).",
        *([f"Dense not run above B = {a.dense_max_batch} (--dense-max-batch)."]
          if any(r["dense"] is None for r in rows) else []),
    ])
    print(table)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
