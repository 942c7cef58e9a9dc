#!/usr/bin/env bash
# The CUDA checks of the project, on a CUDA host, in one go (under 8 minutes on one H100/H200):
# the CUDA-only tests, then the inference benchmark (eager fp32 / bf16 fast path / compile at
# batch 1, 8 and 32, with the ratios) and the training-step benchmark at the papers' sizes.
#
#   benchmarks/gpu.sh                 # uses .venv/bin/python, else python3
#   PYTHON=/opt/venv/bin/python benchmarks/gpu.sh
#
# It needs a Python environment with a CUDA build of torch and the project's requirements
# (the worker Docker image, docker/worker.Dockerfile, has both: `docker compose run --rm worker-infer benchmarks/gpu.sh` on a GPU host).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
"$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__}: run this on a CUDA host")
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
echo "== CUDA-only tests"
"$PYTHON" -m pytest -q -rs -k cuda tests/models/test_checkpoint.py tests/workers/test_fast_path.py
echo "== inference (images/s)"
timeout 300 "$PYTHON" benchmarks/infer.py --device cuda --seconds 2
echo "== training steps at the papers' sizes"
timeout 240 "$PYTHON" benchmarks/train_step.py --paper
