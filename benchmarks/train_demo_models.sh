#!/usr/bin/env bash
# Train the shipped demo models (ganserve/demo_weights/) with the project's own training CLI on
# the demo datasets `make run` builds (training.demo, seed 0), then export them as half-precision
# safetensors with their cards (benchmarks/ship_demo_models.py). Runs each demo named (default:
# all three) one after the other; a demo's run folder is runs/<demo> under $WORK.
#
#   benchmarks/train_demo_models.sh                  # all three (about 40 minutes each on 1 core)
#   WORK=/tmp/demo-train benchmarks/train_demo_models.sh digits
#
# OMP_NUM_THREADS (default 1) sets the CPU threads of each run; on a GPU add DEVICE=cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-var/demo-train}
DEVICE=${DEVICE:-auto}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DATA="$WORK/data"
RUNS="$WORK/runs"

# The exact training command of each demo (recorded in its card).
demo_command() {
  case "$1" in
    # Four stages: 10000 steps (the rate decayed to 0 over the second half), then three warm
    # restarts from the stage before, each with the rate decaying from 2e-4 to 0 again
    # (6000, 6000 and 8000 steps): 30000 steps in all.
    labels2photo) echo "$PY -m training pix2pix --data $DATA/labels2photo \
--out $RUNS/labels2photo-base --image-size 64 --batch-size 4 --width 32 --norm instance \
--steps 10000 --decay-steps 5000 --checkpoint-every 500 --sample-every 1000 --seed 0 \
--device $DEVICE --no-progress-bar --name labels2photo && $PY -m training pix2pix \
--data $DATA/labels2photo --out $RUNS/labels2photo-2 --init-from $RUNS/labels2photo-base/model \
--image-size 64 --batch-size 4 --width 32 --norm instance --steps 6000 --decay-steps 6000 \
--checkpoint-every 500 --sample-every 1000 --seed 0 --device $DEVICE --no-progress-bar \
--name labels2photo && $PY -m training pix2pix --data $DATA/labels2photo \
--out $RUNS/labels2photo-3 --init-from $RUNS/labels2photo-2/model --image-size 64 \
--batch-size 4 --width 32 --norm instance --steps 6000 --decay-steps 6000 \
--checkpoint-every 500 --sample-every 1000 --seed 0 --device $DEVICE --no-progress-bar \
--name labels2photo && $PY -m training pix2pix --data $DATA/labels2photo \
--out $RUNS/labels2photo --init-from $RUNS/labels2photo-3/model --image-size 64 \
--batch-size 4 --width 32 --norm instance --steps 8000 --decay-steps 8000 \
--checkpoint-every 500 --sample-every 1000 --seed 0 --device $DEVICE --no-progress-bar \
--name labels2photo" ;;
    # Two stages: 8000 steps with a 128-number latent (the class embedding is N(0, 1), as loud
    # as z, for a short run), then 5000 steps from that model at half the rates with a slower
    # average of G (EMA 0.999) and the CutMix probability at 0.5 from the start.
    digits) echo "$PY -m training unetgan --data $DATA/digits --out $RUNS/digits-1 --image-size 32 \
--batch-size 16 --width 8 --latent-dim 128 --shared-init normal --g-lr 0.0002 --d-lr 0.0004 \
--no-mirror --steps 8000 --warmup-steps 500 --ema-start 200 --ema-decay 0.995 \
--checkpoint-every 500 --sample-every 1000 --seed 0 --device $DEVICE --no-progress-bar \
--name digits && $PY -m training unetgan --data $DATA/digits --out $RUNS/digits \
--init-from $RUNS/digits-1/model --image-size 32 --batch-size 16 --width 8 --latent-dim 128 \
--shared-init normal --g-lr 0.0001 --d-lr 0.0002 --no-mirror --steps 5000 --warmup-steps 0 \
--ema-start 0 --ema-decay 0.999 --checkpoint-every 500 --sample-every 1000 --seed 0 \
--device $DEVICE --no-progress-bar --name digits" ;;
    faces) echo "$PY -m training pggan --data $DATA/faces --out $RUNS/faces --image-size 32 \
--phase-images 10000 --fmap-base 512 --fmap-max 64 --latent-dim 64 \
--batch-sizes 4:16,8:16,16:16,32:16 --ema-decay 0.99 --mirror --checkpoint-every 500 \
--sample-every 1000 --seed 0 --device $DEVICE --no-progress-bar --name faces" ;;
    *) echo "unknown demo $1 (labels2photo, digits, faces)" >&2; return 2 ;;
  esac
}

demos=("$@")
[ ${#demos[@]} -gt 0 ] || demos=(labels2photo digits faces)
mkdir -p "$DATA" "$RUNS"
for demo in "${demos[@]}"; do
  command=$(demo_command "$demo")
  [ -d "$DATA/$demo" ] || "$PY" -c "import sys; from pathlib import Path; \
from training.demo import build_demo; build_demo(sys.argv[1], Path(sys.argv[2]))" "$demo" "$DATA/$demo"
  started=$(date +%s)
  bash -c "$command"
  steps=$(grep -o -- "--steps [0-9]*" <<<"$command" | awk "{s += \$2} END {print s}" || true)
  echo "{\"command\": \"$command\", \"seconds\": $(( $(date +%s) - started )), \"steps\": ${steps:-null}}" > "$RUNS/$demo/recipe.json"
done
