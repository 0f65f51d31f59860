#!/usr/bin/env bash
# The GPU benchmark (benchmarks/gpu_check.py) on a machine with a CUDA device, under 5 minutes,
# writing benchmarks/results/gpu.md. The machine it is meant for has no network and its own
# Python with torch, torch-geometric and timm, but no faiss-cpu or pytorch-metric-learning:
# prepare their wheels here first with `bash benchmarks/gpu_wheels.sh` (into .whl/), carry
# .whl/ along, then run
#     bash benchmarks/gpu.sh [WHEEL_DIR]      # default .whl
# The project runs from the source tree (PYTHONPATH); nothing is installed into the machine's
# own environment (missing packages go to /tmp/gcahng-site).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${1:-.whl}
python=${PYTHON:-python3}
missing=()
"$python" -c "import faiss" 2>/dev/null || missing+=(faiss_cpu)
"$python" -c "import pytorch_metric_learning" 2>/dev/null || missing+=(pytorch_metric_learning)
site=/tmp/gcahng-site
if ((${#missing[@]})); then
    for name in "${missing[@]}"; do
        compgen -G "$wheels/${name}-*.whl" >/dev/null || {
            echo "Error: $name is not installed and no $wheels/${name}-*.whl; run benchmarks/gpu_wheels.sh" >&2
            exit 2
        }
    done
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        $(for name in "${missing[@]}"; do ls "$wheels/${name}"-*.whl; done)
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
timeout 290 "$python" benchmarks/gpu_check.py --out benchmarks/results/gpu.md "${@:2}"
