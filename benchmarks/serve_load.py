"""`gcahng serve` under load: 8 concurrent clients x 50 upload searches on loopback.

Builds, in a temporary folder, a tiny_cnn checkpoint (or ``--backbone resnet50``), exports it
to ONNX, indexes a generated 200-image gallery with the ONNX model, starts ``gcahng serve`` on
a free 127.0.0.1 port, and sends ``--clients`` threads x ``--requests`` ``POST /api/search``
uploads. Reports errors, p50/p99 latency, and the server's RSS after the first 50 requests and
at the end (growth beyond noise would be a leak). Bounded in count and time; stops by itself.
Writes ``benchmarks/results/serve_load.md``.

    python benchmarks/serve_load.py [--clients 8] [--requests 50] [--backbone tiny_cnn]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.models.embedding import create_embedding_model

REPORT = Path(__file__).resolve().parent / "results" / "serve_load.md"
TIMEOUT_S = 30.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _prepare(work: Path, backbone: str, image_size: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(10):
        (work / "gallery" / f"class{c}").mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(
                work / "gallery" / f"class{c}" / f"{i}.jpg")
    torch.manual_seed(0)
    model = create_embedding_model(backbone, 128, pretrained=False, image_size=image_size)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, work / "model.pt")
    for args in (["export", work / "model.pt", "--out", work / "model.onnx"],
                 ["index", "--model", work / "model.onnx", "--images", work / "gallery", "--out", work / "index",
                  "--workers", "0"]):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        if result.exit_code != 0:
            raise SystemExit(result.output)
    return work / "index"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--backbone", default="tiny_cnn")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gcahng-serve-load-"))
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    process = None
    try:
        index_dir = _prepare(work, args.backbone, args.image_size)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-m", "gcahng", "serve", "--index", str(index_dir),
                                    "--port", str(port), "-k", "12"], stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/api/info", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gcahng serve did not start") from None
                time.sleep(0.3)
        uploads = []
        for i in range(16):
            buffer = io.BytesIO()
            Image.open(work / "gallery" / f"class{i % 10}" / f"{i}.jpg").save(buffer, "JPEG")
            uploads.append(buffer.getvalue())
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        done = [0]
        rss_after_first: list[float] = []

        def client(c: int) -> None:
            with httpx.Client(timeout=TIMEOUT_S) as session:
                for r in range(args.requests):
                    data = uploads[(c + r) % len(uploads)]
                    start = time.perf_counter()
                    try:
                        response = session.post(url + "/api/search?k=12",
                                                files={"image": ("q.jpg", data, "image/jpeg")})
                        ok = response.status_code == 200 and len(response.json()["results"]) == 12
                        problem = None if ok else f"HTTP {response.status_code}: {response.text[:100]}"
                    except httpx.HTTPError as err:
                        problem = f"{type(err).__name__}: {err}"
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        if problem:
                            errors.append(problem)
                        done[0] += 1
                        if done[0] == 50:
                            rss_after_first.append(_rss_mb(process.pid))

        wall = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(client, range(args.clients)))
        wall = time.perf_counter() - wall
        rss_end = _rss_mb(process.pid)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    total = args.clients * args.requests
    ms = sorted(1e3 * t for t in latencies)
    lines = [
        "# `gcahng serve` under load",
        "",
        f"{args.clients} concurrent clients x {args.requests} upload searches (`POST /api/search`, k = 12, "
        f"128x96 JPEG) on loopback; model {args.backbone} {args.image_size} px exported to ONNX (onnxruntime, "
        f"one shared session); 200-image flat index; {os.cpu_count()} CPU cores.",
        f"Load average (1, 5, 15 min) before: {load_before}; after: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (the machine is shared with other agents' jobs: numbers are under load).",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| requests / errors | {total} / {len(errors)} |",
        f"| latency p50 | {statistics.median(ms):.1f} ms |",
        f"| latency p99 | {ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]:.1f} ms |",
        f"| throughput | {total / wall:.1f} requests/s |",
        f"| server RSS after the first 50 requests / at the end | {rss_after_first[0]:.1f} MB / {rss_end:.1f} MB |",
        "",
    ]
    if errors:
        lines.append(f"First error: {errors[0]}")
    report = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
