"""benchmarks/gpu_check.py runs on the CPU with --dry-run, so the GPU benchmark cannot rot."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_dry_run_measures_every_item(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    checks = {row["check"] for row in rows}
    for prefix in ("a:", "b:", "c: training", "c: overhead", "d:", "e:"):
        assert any(check.startswith(prefix) for check in checks), (prefix, checks)
    equality = next(row for row in rows if row["check"].startswith("a:"))
    assert equality["pass"] and equality["params_max_rel"] <= 1e-4
    assert next(row for row in rows if row["check"].startswith("b:"))["pass"]
    assert all(row["seconds"] > 0 for row in rows if "seconds" in row)
    assert "error" not in next(row for row in rows if row["check"].startswith("e:"))
    report = out.read_text()
    assert "## a: CPU vs device" in report and "## d: GCL step" in report
