"""Forward + backward of batch graph + GCL + CACAI on the CPU: gcahng vs a straightforward
dense implementation of the same equations that, like the authors' release, projects the
gathered per-edge endpoint copies (node attention q/k/v on E copies, edge attention k/v on
2E copies).

    python benchmarks/gcl_step.py            # B = 81 (27 x 3), D = 512, K = 2, H = 4
    python benchmarks/gcl_step.py --repeats 3 --classes 8

Each implementation runs in its own process; peak memory is the growth of the process's
peak RSS over the RSS after the model and inputs were built, with glibc's mmap threshold
fixed (MALLOC_MMAP_THRESHOLD_) so that freed tensors leave the RSS instead of staying in the
heap's high-water mark. Results go to benchmarks/results/gcl_step.md.
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


def run_one(impl: str, C: int, m: int, D: int, K: int, H: int, repeats: int) -> dict:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    gcl = GCL(D, 100, GCLConfig(iterations=K, heads=H)).eval()  # eval: no dropout, so outputs can be compared
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
        return lam.detach(), logits.detach(), neg.embeddings.detach()

    base_rss_kb = _current_rss_kb()
    outputs = step()  # warm-up, also gives the outputs to compare
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.save(outputs, f"/tmp/gcl_step_{impl}.pt")
    return {"impl": impl, "median_s": statistics.median(times), "times_s": times,
            "median_cpu_s": statistics.median(cpu_times),
            "peak_mib": (peak_kb - base_rss_kb) / 1024}


def _current_rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=27)
    p.add_argument("--per-class", type=int, default=3)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--impl", choices=["ours", "dense"], help=argparse.SUPPRESS)
    a = p.parse_args()
    shape = (a.classes, a.per_class, a.dim, a.iterations, a.heads, a.repeats)
    if a.impl:
        print(json.dumps(run_one(a.impl, *shape)))
        return
    results = {}
    for impl in ("ours", "dense"):
        out = subprocess.run([sys.executable, __file__, "--impl", impl, "--classes", str(a.classes),
                              "--per-class", str(a.per_class), "--dim", str(a.dim), "--iterations",
                              str(a.iterations), "--heads", str(a.heads), "--repeats", str(a.repeats)],
                             check=True, capture_output=True, text=True,
                             env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
        results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, dense = (torch.load(f"/tmp/gcl_step_{i}.pt") for i in ("ours", "dense"))
    max_diff = max(float((x - y).abs().max()) for x, y in zip(ours, dense, strict=False))
    t_ratio = results["ours"]["median_s"] / results["dense"]["median_s"]
    c_ratio = results["ours"]["median_cpu_s"] / results["dense"]["median_cpu_s"]
    m_ratio = results["ours"]["peak_mib"] / results["dense"]["peak_mib"]
    B = a.classes * a.per_class
    load = os.getloadavg()
    table = "\n".join([
        f"GCL step benchmark: graph + GCL + CACAI forward+backward, B = {B} ({a.classes} x {a.per_class}), "
        f"D = {a.dim}, K = {a.iterations}, H = {a.heads}, CPU, {os.environ.get('BENCH_THREADS', '2')} threads, "
        f"median of {a.repeats}; 1-minute load average at the end {load[0]:.2f}",
        "",
        "| implementation | median wall time (s) | median CPU time (s) | peak memory over inputs (MiB) |",
        "|---|---|---|---|",
        *(
            f"| {label} | {results[i]['median_s']:.3f} | {results[i]['median_cpu_s']:.3f} "
            f"| {results[i]['peak_mib']:.0f} |"
            for i, label in (
                ("ours", "gcahng (node projections, fused gathers)"),
                ("dense", "dense, gathered projections"),
            )
        ),
        f"| ratio gcahng / dense | {t_ratio:.2f} | {c_ratio:.2f} | {m_ratio:.2f} |",
        "",
        f"Largest absolute difference of lambda, node logits and negatives: {max_diff:.2e} "
        f"({'same outputs' if max_diff < 1e-4 else 'OUTPUTS DIFFER'}).",
    ])
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n")


if __name__ == "__main__":
    main()
