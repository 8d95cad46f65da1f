#!/usr/bin/env bash
# One device call: eager bf16 (baseline), compiled bf16 and native FP8 at 4.5B scale, then accuracy,
# window 1 steady state and the lone GEMMs. Each result is a JSON file in $OUT (or ./out), written as
# soon as it is measured, so a call cut short still returns what it finished. Optional: the names of
# the cases to run (default: all, in this order).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
cases=${*:-"eager_w4 compiled_w4 fp8_w4 accuracy eager_w1 gemm"}
common="--variant 4.5B_distill --size 720x720 --steps 16 --chunks 6"
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__)"; } >> "$OUT/log.txt" 2>&1
for name in $cases; do
  case $name in
    eager_w4) args="run --path eager --window 4 $common" ;;
    compiled_w4) args="run --path compiled --window 4 $common" ;;
    fp8_w4) args="run --path fp8 --window 4 $common" ;;
    eager_w1) args="run --path eager --window 1 $common" ;;
    compiled_w1) args="run --path compiled --window 1 $common" ;;
    fp8_w1) args="run --path fp8 --window 1 $common" ;;
    accuracy) args="accuracy --variant 4.5B_distill --size 720x720" ;;
    gemm) args="gemm" ;;
    *) echo "unknown case $name"; continue ;;
  esac
  start=$(date +%s)
  python3 benchmarks/gpu_speed.py $args --json "$OUT/$name.json" > "$OUT/$name.stdout" 2>> "$OUT/log.txt" \
    && echo "$name ok ($(( $(date +%s) - start )) s)" || echo "$name FAILED ($(( $(date +%s) - start )) s)"
  rm -f "$OUT/$name.stdout"
done | tee -a "$OUT/log.txt"
tail -20 "$OUT/log.txt"
