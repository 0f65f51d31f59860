#!/usr/bin/env bash
# Downloads (here, where PyPI is reachable) the wheels benchmarks/gpu.sh needs on the GPU
# machine, which has Python 3.12 and no network: faiss-cpu and pytorch-metric-learning, for
# cp312 manylinux x86-64, into .whl/ (or DIR). Their own dependencies are there already.
#     bash benchmarks/gpu_wheels.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir" faiss-cpu pytorch-metric-learning
ls -l "$dir"
