#!/usr/bin/env bash
# The CUDA checks of the project on a CUDA host, in one go, within a time budget (GPU_SH_SECONDS,
# default 540 s: every step has its own limit, cut to what is left, and a step that would get
# under 30 s is skipped and named at the end). In order (docs/performance.md, "GPU", reads them):
#
#   tests  the CUDA-only tests: pinned copies on the copy stream against the plain path, CUDA
#          graphs (reduce-overhead) against eager, channels_last, the pool-size decision
#   infer  unet_256 at 256 px, batch 32: eager fp32 / bf16 / compile / reduce-overhead, the bare
#          network and the worker's whole batch call (masks drawn, copies in and out), with each
#          compiled setting's first-call seconds; then batch 1 and 8 uncompiled, and the
#          samplers at batch 32
#   stack  unet_256 through the stack with 256 clients, 1 against 2 infer pool processes
#          (benchmarks/service.py), then the stack's own cost per job with a near-free model
#          (benchmarks/stack_overhead.py)
#   train  training steps at the papers' sizes
#
#   benchmarks/gpu.sh                  # all; uses .venv/bin/python, else python3
#   benchmarks/gpu.sh infer stack      # some sections
#   PYTHON=/opt/venv/bin/python GPU_SH_SECONDS=300 benchmarks/gpu.sh tests infer
#
# It needs a Python environment with a CUDA build of torch and the project's requirements
# (the worker Docker image, docker/worker.Dockerfile, has both: `docker compose run --rm
# worker-infer benchmarks/gpu.sh` on a GPU host). Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
BUDGET="${GPU_SH_SECONDS:-540}"
SECTIONS=" ${*:-tests infer stack train} "
failed=()

step() {  # step LIMIT TITLE COMMAND...: COMMAND under min(LIMIT, what is left of the budget)
    local limit=$1 title=$2 left=$((BUDGET - SECONDS))
    shift 2
    if [ "$left" -lt 30 ]; then
        echo "== $title: skipped, ${left} s of the ${BUDGET} s budget left"
        failed+=("$title (skipped)")
        return
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $title (at most ${limit} s)"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@"
    local rc=$?
    echo "-- $title: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed+=("$title (exit $rc$([ "$rc" -eq 124 ] && echo ', time limit'))")
}

"$PYTHON" - <<'PY' || exit 1
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__}: run this on a CUDA host")
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY

if [[ $SECTIONS == *" tests "* ]]; then
    step 120 "CUDA-only tests" "$PYTHON" -m pytest -q -rs -k cuda tests/models/test_checkpoint.py \
        tests/workers/test_fast_path.py tests/workers/test_gpu_path.py tests/workers/test_concurrency.py
fi
if [[ $SECTIONS == *" infer "* ]]; then
    step 200 "unet_256 at batch 32 (images/s)" "$PYTHON" benchmarks/infer.py --device cuda \
        --networks unet_256 --batches 32 --seconds 2 --worker
    step 40 "unet_256 at batch 1 and 8, uncompiled" "$PYTHON" benchmarks/infer.py --device cuda \
        --networks unet_256 --batches 1 8 --seconds 1 --settings eager-fp32 fast --worker
    step 90 "samplers at batch 32" "$PYTHON" benchmarks/infer.py --device cuda \
        --networks unetgan_digits pggan_faces --batches 32 --seconds 1 \
        --settings eager-fp32 fast reduce-overhead
fi
if [[ $SECTIONS == *" stack "* ]]; then
    step 150 "unet_256 through the stack, 256 clients" "$PYTHON" benchmarks/service.py \
        --requests 20 --clients 256 --concurrent 2048 --infer-concurrency 1 2 --no-unbatched
    step 100 "the stack's own cost per job" "$PYTHON" benchmarks/stack_overhead.py \
        --seconds 10 --clients 128 --sequential 20 --env GANSERVE_MAX_QUEUED_JOBS=1000
fi
if [[ $SECTIONS == *" train "* ]]; then
    step 120 "training steps at the papers' sizes" "$PYTHON" benchmarks/train_step.py --paper
fi

echo "== done in ${SECONDS} s"
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'not passed: %s\n' "${failed[@]}"
    exit 1
fi
