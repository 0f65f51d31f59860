"""Per-rank memory and time of the GCL step when one batch graph spans W processes (issue 14, item 8).

    python benchmarks/distributed.py                         # global batch 80, 160, 320 (x 2 images), W = 1, 2, 4
    python benchmarks/distributed.py --batches 80 160 320 640 --worlds 1 2 4 8 --max-gib 100

The step: batch graph + GCL (K = 1, H = 2, D = 512, training mode) + CACAI, forward and
backward. ``W = 1`` is the single-process step (the whole graph, the ordered rows, no
collectives): the reference. ``W > 1``: each rank holds C/W classes x m of the global batch,
builds its rows of the global graph (edges leaving its nodes, ``(B/W) * B`` of them), runs GCL
on them with node states exchanged between the sub-steps and the GCL's batch norms on global
statistics, and makes its anchors' negatives (:mod:`gcahng.distributed`).

Processes are started with ``torch.multiprocessing`` (gloo on the CPU; NCCL, one GPU per rank,
when there are at least W GPUs, else that W is skipped on CUDA). CPU threads: ``--threads``
per rank (default 1: on a shared machine several threads per process mostly wait on each
other; W ranks on fewer cores than W also wait, so CPU times of W = 4 on 2 cores are upper
bounds). Peak memory per rank: on the CPU the growth of the
process's peak RSS over its RSS before the first step (glibc's mmap threshold fixed so freed
tensors leave the RSS), on CUDA ``torch.cuda.max_memory_allocated`` over the allocation before
the first step; the table gives the largest rank. Configurations whose estimated memory (all
ranks together, extrapolated per edge from the largest run so far) exceeds ``--max-gib`` are skipped
and listed. Results: benchmarks/results/distributed.md (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "distributed.md"
PER_CLASS = 2


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found")


def _rank(rank: int, world: int, args: dict, init_file: str, out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    from gcahng.cacai import cacai
    from gcahng.distributed import DistContext
    from gcahng.distributed.collectives import gather_chunk_major
    from gcahng.distributed.graph import build_rows_graph
    from gcahng.distributed.norm import use_global_statistics
    from gcahng.graph import GCL, build_batch_graph
    from gcahng.hyperparameters import GCLConfig

    cuda = args["device"] == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(args["threads"])
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{init_file}", rank=rank,
                                world_size=world)
    ctx = DistContext(rank, world)
    C, m, D = args["batch"] // PER_CLASS, PER_CLASS, args["dim"]
    local = C // world
    torch.manual_seed(0)
    gcl = GCL(D, 100, GCLConfig(iterations=1, heads=2)).to(device).train()
    if world > 1:
        use_global_statistics(gcl, ctx)
    labels_all = torch.arange(C, device=device).repeat(m)
    z_all0 = torch.randn(C * m, D, device=device)
    own = z_all0.view(m, C, D)[:, rank * local:(rank + 1) * local].reshape(m * local, D)
    own_labels = labels_all.view(m, C)[:, rank * local:(rank + 1) * local].reshape(-1)

    def step() -> None:
        z = own.clone().requires_grad_(True)
        if world == 1:
            graph = build_batch_graph(z, labels_all, C, m)
            lam, logits = gcl(graph)
            neg = cacai(z, lam.detach(), 0.9, labels_all, C, m, graph=graph, generator=torch.Generator().manual_seed(0))
        else:
            z_all = gather_chunk_major(z, ctx, m)
            graph = build_rows_graph(z, own_labels, local, m, ctx, z_all)
            lam, logits = gcl(graph)
            slots = slice(rank * local, (rank + 1) * local)
            neg = cacai(z_all, lam.detach(), 0.9, labels_all, C, m, graph=graph,
                        generator=torch.Generator().manual_seed(0), anchor_slots=slots)
        (lam.mean() + logits.logsumexp(1).mean() + neg.embeddings.pow(2).mean()).backward()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()
        if world > 1:
            dist.barrier()

    sync()
    base = torch.cuda.memory_allocated() if cuda else _rss_kb() * 1024
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args["repeats"] + 1):  # the first is a warm-up
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"rank": rank, "median_s": statistics.median(times[1:]), "peak_bytes": peak - base,
              "edges": m * local * C * m}  # edges leaving the rank's nodes
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    if world > 1:
        dist.destroy_process_group()


def run_config(batch: int, world: int, a: argparse.Namespace) -> dict:
    """Start ``world`` ranks in a fresh interpreter; the largest rank's peak and time."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = json.dumps({"batch": batch, "world": world, "dim": a.dim, "threads": a.threads,
                           "repeats": a.repeats, "device": a.device, "tmp": tmp})
        subprocess.run([sys.executable, __file__, "--worker", spec], check=True,
                       env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
        ranks = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(world)]
    return {"batch": batch, "world": world, "median_s": max(r["median_s"] for r in ranks),
            "peak_bytes": max(r["peak_bytes"] for r in ranks), "edges": ranks[0]["edges"]}


def _worker(spec: str) -> None:
    import torch.multiprocessing as mp

    args = json.loads(spec)
    init_file = os.path.join(args["tmp"], "init")
    mp.start_processes(_rank, args=(args["world"], args, init_file, args["tmp"]), nprocs=args["world"], join=True,
                       start_method="spawn")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[80, 160, 320], help="global batch sizes (C x 2)")
    p.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4], help="numbers of processes")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--threads", type=int, default=1, help="CPU threads per rank")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-gib", type=float, default=12.0, help="skip configurations estimated above this (all ranks)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        _worker(a.worker)
        return
    import torch

    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    gpus = torch.cuda.device_count() if a.device == "cuda" else 0
    rows, skipped, bytes_per_edge = [], [], None
    for batch in a.batches:
        for world in a.worlds:
            if (batch // PER_CLASS) % world:
                skipped.append(f"B = {batch}, W = {world}: {batch // PER_CLASS} classes not divisible by {world}")
                continue
            if a.device == "cuda" and world > gpus:
                skipped.append(f"B = {batch}, W = {world}: needs {world} GPUs, {gpus} present")
                continue
            edges = batch * batch // world
            if bytes_per_edge is not None and bytes_per_edge * edges * world > a.max_gib * 2**30:
                estimate = bytes_per_edge * edges * world / 2**30
                skipped.append(f"B = {batch}, W = {world}: estimated {estimate:.1f} GiB over --max-gib {a.max_gib}")
                continue
            row = run_config(batch, world, a)
            if row["edges"] >= max((r["edges"] for r in rows), default=0):  # the largest run extrapolates best
                bytes_per_edge = row["peak_bytes"] / row["edges"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    reference = {r["batch"]: r for r in rows if r["world"] == 1}
    load = os.getloadavg()
    lines = [
        f"Distributed GCL step (graph + GCL + CACAI, forward and backward), D = {a.dim}, K = 1, H = 2, "
        f"m = {PER_CLASS} images per class, {a.device.upper()}"
        + (f", {a.threads} thread(s) per rank on {os.cpu_count()} cores" if a.device == "cpu" else "")
        + f", median of {a.repeats} after a warm-up; 1-minute load average at the end {load[0]:.2f}. "
        "W = 1 is the single-process step on the whole graph (the reference).",
        "",
        "| global batch B | W | edges per rank | one (edges, D) float32 tensor per rank (MiB) "
        "| peak memory per rank (MiB) | peak / W = 1 | time per step (s) | time / W = 1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = reference.get(r["batch"])
        mem_ratio = f"{r['peak_bytes'] / ref['peak_bytes']:.2f}" if ref else "—"
        time_ratio = f"{r['median_s'] / ref['median_s']:.2f}" if ref else "—"
        lines.append(
            f"| {r['batch']} | {r['world']} | {r['edges']} | {r['edges'] * a.dim * 4 / 2**20:.0f} "
            f"| {r['peak_bytes'] / 2**20:.0f} | {mem_ratio} | {r['median_s']:.3f} | {time_ratio} |"
        )
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    table = "\n".join(lines)
    print(table)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
