#!/usr/bin/env bash
# Everything issues 3 and 5 need from a lent GPU, prepared as two device calls.
#
#   speed  (about 4-5 min): the CUDA tests (tests/test_gpu.py); inference against the official code
#          on the four cases of issue 5 (time, peak memory, TFLOP/s); training throughput against
#          the official code at the released 12 x 512 shape with 640-row x 16-feature tables (32
#          and 64 tables; COMPILE=1 adds torch.compile, about 2 min more); our trainer end to end at
#          that shape with the prior workers feeding it (tables/s, data-wait share, GPU utilisation).
#   train  (TRAIN_SECONDS + about 1-2 min): the gpu-8min preset, resumed from runs/gpu-pack when
#          that folder is carried, packed back as bf16 shards (+ optimizer state) with its log.
# A session has 15 minutes of device time in all, the machine's start included: the two calls
# below fit when nothing has to be rerun.
#
# Before the calls, here: pip download --no-deps "autogluon.tabular==1.6.3" einops einx frozendict -d /tmp/wheels
#                         python scripts/vendor_official.py .official --wheels /tmp/wheels
# Device calls (device tool):
#   run(command="bash benchmarks/gpu_session.sh speed", carry=[".official"], timeout_s=360)
#   run(command="TRAIN_SECONDS=300 bash benchmarks/gpu_session.sh train", carry=["runs/gpu-pack"], timeout_s=480)
# After the train call: python -m pretraining unpack <files_at>/pack runs/gpu-8min-classification
# (then copy the pack to runs/gpu-pack so that the next GPU session resumes the run).
# Smoke test of every command on this CPU with tiny shapes (CI does not run this):
#   SMOKE=1 OUT=/tmp/gpu-smoke bash benchmarks/gpu_session.sh all
#
# Results land in $OUT as at most 8 files (the device tool's limit): speed.txt; train.txt,
# train-log.jsonl and pack/ (manifest + shards). Each step runs under its own timeout and a
# failing step does not stop the next; the last lines printed are the summary.

set -u
stage=${1:-speed}
OUT=${OUT:?set OUT to the folder for results}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
command -v "$PY" > /dev/null || PY=python
OFFICIAL=${OFFICIAL_PATH:-.official}
SUMMARY=()

step() {  # step LOGFILE NAME TIMEOUT_S COMMAND... : run, log, remember rc and seconds
  local log=$1 name=$2 limit=$3
  shift 3
  local start=$SECONDS
  printf '\n===== %s (limit %ss): %s\n' "$name" "$limit" "$*" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  SUMMARY+=("$(printf '%-28s rc=%-3s %4ss' "$name" "$rc" "$((SECONDS - start))")")
  printf '===== %s: rc=%s, %ss\n' "$name" "$rc" "$((SECONDS - start))" | tee -a "$log"
}

if [[ -n "${SMOKE:-}" ]]; then  # the same commands at toy sizes, on the CPU
  DEVICE=cpu
  RUN_DIR=${RUN_DIR:-/tmp/gpu-smoke-run}
  SHAPE=(--dim 64 --layers 2)
  CASES=1000x1000x10
  THROUGHPUT=(--tables 4 --support 64 --query 16 --features 8 --steps 2 --warmup 1)
  E2E=(--preset tiny --set steps=12 --set log_every=4 --set eval_every=1000 --set num_workers=1)
  TRAIN=(--preset tiny --set steps=40 --set save_every=10)
else
  DEVICE=cuda
  SHAPE=(--dim 512 --layers 12)
  CASES=all
  THROUGHPUT=(--tables 32 --support 512 --query 128 --features 16 --steps 10 --warmup 3)
  # The released shape fed by the real prior stream; 64 tables per step in micro-batches of 32.
  E2E=(--preset mitra-full --set batch_size=64 --set micro_batch_size=32 --set gradient_checkpointing=false
       --set steps=1000 --set log_every=5 --set eval_every=100000 --set num_workers=14 --set warmup_steps=10
       --set real_data_eval=false --set n_eval_tables=64)
  TRAIN=(--preset gpu-8min)
fi

gpu_sampler() {  # nvidia-smi utilisation every second into $1 until killed
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$1" 2>/dev/null &
    echo $!
  else
    echo ""
  fi
}

utilisation_summary() {  # mean/median GPU utilisation of a sampler file
  "$PY" - "$1" <<'EOF'
import sys, statistics
rows = [line.split(",") for line in open(sys.argv[1]) if line.count(",") >= 2]
busy = [float(r[1]) for r in rows if r[1].strip().replace(".", "").isdigit()]
if busy:
    print(f"nvidia-smi utilization.gpu over {len(busy)} s: mean {statistics.mean(busy):.0f}%, "
          f"median {statistics.median(busy):.0f}%, peak memory used {max(float(r[2]) for r in rows):.0f} MiB")
else:
    print("no nvidia-smi samples")
EOF
}

speed() {
  local log="$OUT/speed.txt"
  : > "$log"
  step "$log" environment 30 bash -c "nvidia-smi || true; $PY -c 'import torch, sys; print(sys.version); print(torch.__version__, torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())'"
  step "$log" cuda-tests 120 "$PY" -m pytest tests/test_gpu.py -q -rs -p no:cacheprovider
  step "$log" inference-vs-official 120 "$PY" benchmarks/official_speed.py --cases "$CASES" --repeats 3 \
    --device "$DEVICE" "${SHAPE[@]}" --official-path "$OFFICIAL"
  step "$log" training-vs-official 90 "$PY" benchmarks/train_throughput.py "${SHAPE[@]}" "${THROUGHPUT[@]}" \
    --device "$DEVICE" --official --official-path "$OFFICIAL"
  step "$log" training-64-tables 60 "$PY" benchmarks/train_throughput.py "${SHAPE[@]}" "${THROUGHPUT[@]}" \
    --tables 64 --device "$DEVICE"
  if [[ -n "${COMPILE:-}" ]]; then
    step "$log" training-compiled 240 "$PY" benchmarks/train_throughput.py "${SHAPE[@]}" "${THROUGHPUT[@]}" \
      --compile --device "$DEVICE"
  fi
  local samples=/tmp/gpu-util-e2e.csv sampler
  sampler=$(gpu_sampler "$samples")
  step "$log" trainer-end-to-end 100 "$PY" -m pretraining train "${E2E[@]}" --out /tmp/e2e-run --no-resume \
    --no-progress --device "$DEVICE" --time-limit 45
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null
  { echo "trainer end to end, from its log (tables/s, share of time waiting for data):"
    "$PY" - /tmp/e2e-run/log.jsonl <<'EOF'
import json, sys
records = [r for r in map(json.loads, open(sys.argv[1])) if "tables_per_s" in r]
for r in records:
    print(f"  step {r['step']:5d}  loss {r['loss']:.4f}  {r['tables_per_s']:8.1f} tables/s  data wait {100 * r['data_wait_fraction']:.0f}%")
steady = records[len(records) // 3:] or records
if steady:
    print(f"  steady state (last {len(steady)} logs): {sum(r['tables_per_s'] for r in steady) / len(steady):.1f} tables/s, "
          f"data wait {100 * sum(r['data_wait_fraction'] for r in steady) / len(steady):.1f}%")
EOF
    [[ -f "$samples" ]] && utilisation_summary "$samples"; } 2>&1 | tee -a "$log"
}

train() {
  local log="$OUT/train.txt" run=${RUN_DIR:-runs/gpu-8min-classification}
  : > "$log"
  if [[ -d runs/gpu-pack ]]; then
    step "$log" unpack 120 "$PY" -m pretraining unpack runs/gpu-pack "$run"
  fi
  local samples=/tmp/gpu-util-train.csv sampler
  sampler=$(gpu_sampler "$samples")
  step "$log" gpu-8min 900 "$PY" -m pretraining train "${TRAIN[@]}" --out "$run" --no-progress --device "$DEVICE" \
    --time-limit "${TRAIN_SECONDS:-420}"
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null
  [[ -f "$samples" ]] && utilisation_summary "$samples" | tee -a "$log"
  cp "$run/log.jsonl" "$OUT/train-log.jsonl" 2>/dev/null
  step "$log" pack 120 "$PY" -m pretraining pack "$run" "$OUT/pack"
}

case "$stage" in
  speed) speed ;;
  train) train ;;
  all) speed; train ;;
  *) echo "usage: $0 speed|train|all" >&2; exit 2 ;;
esac
echo
echo "===== summary ($stage, device $DEVICE)"
printf '%s\n' "${SUMMARY[@]}"
ls -la "$OUT"
