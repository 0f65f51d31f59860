"""Retrieval latency: in-process search of a 60,000-image gallery, and `gcahng retrieve` end to end.

Builds, in a temporary folder, a ResNet-50 512-d checkpoint (random weights: latency does
not depend on them), a flat index of 60,000 random unit vectors recorded as embedded by
that checkpoint, and a real photograph as the query (scikit-learn's bundled sample
``china.jpg``). Measures

- in-process exact search, one query at a time (``Index.search``), and in-process
  embedding of the query (decode + preprocess + forward);
- the wall time of the ``gcahng retrieve`` command from process start to answer, on CPU, on
  PyTorch (the checkpoint) and on onnxruntime (``--model`` its ``gcahng export``), with the
  time of its main imports (``python -X importtime``) and whether it loaded any library it
  should not (torch_geometric, sklearn, matplotlib, timm, torchvision);

prints a Markdown report and writes it to ``benchmarks/results/retrieve_latency.md``.
and embedding throughput (images/s, batches of 16) of onnxruntime vs PyTorch. Targets:
search <= 20 ms per query, command <= 3 s on PyTorch, <= 1.0 s on onnxruntime.

    python benchmarks/retrieve_latency.py [--runs 5] [--searches 300]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gcahng.models.embedding import create_embedding_model
from gcahng.retrieval import Index, ModelRecord, load, read_checkpoint

GALLERY, DIM, K = 60_000, 512, 10
FORBIDDEN = ("torch_geometric", "sklearn", "matplotlib", "timm", "torchvision")  # "torch" too on the ONNX path
WATCHED = ("torch", "torchvision", "scipy", "faiss", "numpy", "PIL", "click", "gcahng.data", "gcahng.models",
           "gcahng.retrieval")
REPORT = Path(__file__).resolve().parent / "results" / "retrieve_latency.md"


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _prepare(work: Path) -> tuple[Path, Path, Path, Path]:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    torch.manual_seed(0)
    model = create_embedding_model("resnet50", DIM, pretrained=False)
    ckpt = work / "resnet50.pt"
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, ckpt)
    record = read_checkpoint(ckpt)
    vectors = np.random.default_rng(0).standard_normal((GALLERY, DIM)).astype(np.float32)
    paths = [f"synthetic/{i:05d}.jpg" for i in range(GALLERY)]
    Index.build(vectors, paths, None,
                ModelRecord("checkpoint", str(record.path), record.fingerprint, record.model_spec)).save(work / "index")
    query = work / "china.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(query, quality=90)
    from gcahng.serving.export import export_onnx

    onnx_path = export_onnx(ckpt, work / "resnet50.onnx").path
    return ckpt, work / "index", query, onnx_path


def _throughput(ckpt: Path, onnx_path: Path, query: Path, batches: int = 3, batch: int = 16) -> dict[str, float]:
    """Images per second embedding preprocessed batches of ``batch`` with PyTorch and with onnxruntime."""
    from gcahng.serving.onnx_embedder import OnnxEmbedder

    torch_model, onnx_model = load(ckpt), OnnxEmbedder(onnx_path)
    images = torch.from_numpy(np.repeat(onnx_model.preprocess(query)[None], batch, axis=0))
    out = {}
    for name, run in (("torch", lambda: torch_model.embed_batch(images)),
                      ("onnxruntime", lambda: onnx_model.embed_batch(images.numpy()))):
        run()
        start = time.perf_counter()
        for _ in range(batches):
            run()
        out[name] = batches * batch / (time.perf_counter() - start)
    return out


def _in_process(ckpt: Path, index_dir: Path, query: Path, searches: int) -> dict[str, float]:
    index = Index.load(index_dir)
    embedder = load(ckpt)
    embed_ms = []
    for _ in range(6):
        start = time.perf_counter()
        vector = embedder.embed(query)
        embed_ms.append(1e3 * (time.perf_counter() - start))
    for _ in range(10):
        index.search(vector, K)
    search_ms = []
    for _ in range(searches):
        start = time.perf_counter()
        index.search(vector, K)
        search_ms.append(1e3 * (time.perf_counter() - start))
    start = time.perf_counter()
    index.search(np.repeat(vector, 100, axis=0), K)
    batch_ms = 1e3 * (time.perf_counter() - start) / 100
    return {"search_median_ms": statistics.median(search_ms), "search_p95_ms": float(np.percentile(search_ms, 95)),
            "search_batched_ms": batch_ms, "embed_median_ms": statistics.median(embed_ms[1:])}


def _command(index_dir: Path, query: Path, model: Path | None = None) -> list[str]:
    head = [sys.executable, "-m", "gcahng.cli.main"]
    extra = [] if model is None else ["--model", str(model)]
    return head + ["retrieve", "--query", str(query), "--index", str(index_dir), "-k", str(K), *extra]


def _end_to_end(command: list[str], runs: int, command_cwd: Path) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=command_cwd)
        times.append(time.perf_counter() - start)
        if done.returncode != 0 or "china.jpg" not in done.stdout:
            raise SystemExit(f"gcahng retrieve failed:\n{done.stdout}\n{done.stderr}")
    return times


STAGES = """
import json, sys, time
marks = [time.perf_counter()]
import torch; marks.append(time.perf_counter())
from gcahng.retrieval.index import Index; marks.append(time.perf_counter())
index = Index.load(sys.argv[1]); marks.append(time.perf_counter())
embedder = index.load_embedder(); marks.append(time.perf_counter())
vector = embedder.embed(sys.argv[2]); marks.append(time.perf_counter())
index.search(vector, 10); marks.append(time.perf_counter())
embedder.embed(sys.argv[2]); marks.append(time.perf_counter())
names = ["import torch", "import gcahng.retrieval (+ gcahng.data, faiss)", "load index", "load model",
         "first embedding (decode, preprocess, forward)", "search", "second embedding"]
print(json.dumps({n: b - a for n, a, b in zip(names, marks, marks[1:])}))
"""


def _stages(index_dir: Path, query: Path) -> dict[str, float]:
    """Seconds of each step of a retrieval in a fresh process (what the command does)."""
    done = subprocess.run([sys.executable, "-c", STAGES, str(index_dir), str(query)], capture_output=True, text=True,
                          cwd=index_dir.parent)
    if done.returncode != 0:
        raise SystemExit(f"stage timing failed:\n{done.stderr}")
    return json.loads(done.stdout)


def _imports(command: list[str], command_cwd: Path) -> tuple[dict[str, float], list[str]]:
    """Cumulative import seconds of the main packages, and the forbidden ones that were loaded."""
    argv = [sys.executable, "-X", "importtime", "-m", "gcahng.cli.main", *command[command.index("retrieve"):]]
    stderr = subprocess.run(argv, capture_output=True, text=True, cwd=command_cwd).stderr
    seconds: dict[str, float] = {}
    loaded: set[str] = set()
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| +(\S+)", line)
        if not match:
            continue
        name = match.group(2)
        if name in WATCHED and name not in seconds:
            seconds[name] = int(match.group(1)) / 1e6
        loaded.update(m for m in FORBIDDEN if name == m or name.startswith(m + "."))
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1])), sorted(loaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="end-to-end command runs")
    parser.add_argument("--searches", type=int, default=300, help="timed single-query searches")
    parser.add_argument("--out", type=Path, default=REPORT, help="Markdown report to write")
    args = parser.parse_args()
    load_before = _load_average()
    work = Path(tempfile.mkdtemp(prefix="gcahng-latency-"))
    try:
        ckpt, index_dir, query, onnx_path = _prepare(work)
        stats = _in_process(ckpt, index_dir, query, args.searches)
        command = _command(index_dir, query)
        times = _end_to_end(command, args.runs, work)
        onnx_command = _command(index_dir, query, onnx_path)
        onnx_times = _end_to_end(onnx_command, args.runs, work)
        _, onnx_loaded = _imports(onnx_command, work)
        throughput = _throughput(ckpt, onnx_path, query)
        imports, loaded = _imports(command, work)
        stages = _stages(index_dir, query)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "# `gcahng retrieve` latency",
        "",
        f"Gallery: {GALLERY:,} random {DIM}-d unit vectors, exact inner-product (flat) index; "
        f"model: ResNet-50 {DIM}-d (random weights); query: one 640x427 JPEG photograph; k = {K}; CPU only.",
        f"Machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, Python {platform.python_version()}.",
        f"Load average (1, 5, 15 min) before: {load_before}; after: {_load_average()}.",
        "",
        "| measurement | value | target |",
        "|---|---|---|",
        f"| in-process exact search, 1 query, median | {stats['search_median_ms']:.2f} ms | <= 20 ms |",
        f"| in-process exact search, 1 query, 95th percentile | {stats['search_p95_ms']:.2f} ms | |",
        f"| in-process exact search, per query in a batch of 100 | {stats['search_batched_ms']:.2f} ms | |",
        f"| in-process embedding of the query (decode, preprocess, ResNet-50), median | "
        f"{stats['embed_median_ms']:.0f} ms | |",
        f"| `gcahng retrieve` wall time, median of {len(times)} | {statistics.median(times):.2f} s | <= 3 s |",
        f"| `gcahng retrieve` wall time, each run | {', '.join(f'{t:.2f}' for t in times)} s | |",
        f"| `gcahng retrieve --model resnet50.onnx` (onnxruntime) wall time, median of {len(onnx_times)} | "
        f"{statistics.median(onnx_times):.2f} s | <= 1.0 s |",
        f"| `gcahng retrieve --model resnet50.onnx`, each run | {', '.join(f'{t:.2f}' for t in onnx_times)} s | |",
        f"| embedding throughput, batches of 16, PyTorch | {throughput['torch']:.1f} images/s | |",
        f"| embedding throughput, batches of 16, onnxruntime | {throughput['onnxruntime']:.1f} images/s | |",
        "",
        "Steps of one retrieval in a fresh process (seconds): "
        + ", ".join(f"{name} {sec:.3f}" if sec < 0.1 else f"{name} {sec:.2f}" for name, sec in stages.items()) + ".",
        "",
        "Imports of the command (cumulative seconds, `python -X importtime`, nested imports counted "
        "where first made): "
        + ", ".join(f"{name} {sec:.2f}" for name, sec in imports.items()) + ".",
        "",
        f"Libraries the command should not need, loaded anyway: {', '.join(loaded) if loaded else 'none'}; "
        f"with --model resnet50.onnx: {', '.join(onnx_loaded) if onnx_loaded else 'none'}.",
        "",
        "The machine is shared with other agents' jobs (see the load average): numbers are under load.",
        "",
    ]
    report = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
