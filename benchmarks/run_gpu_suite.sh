#!/usr/bin/env bash
# One device call: CUDA conformance, then the engine at MAGI-1 scale. JSON results land in $OUT (or ./out).
# Usage (GPU machine, repo root): MAGI_CONFORMANCE_DIR=.device/conformance bash benchmarks/run_gpu_suite.sh [quick]
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__)"; } > "$OUT/log.txt" 2>&1
python3 benchmarks/cuda_conformance.py > "$OUT/cuda_conformance.json" 2>>"$OUT/log.txt"
python3 benchmarks/vae_scale.py --size 720x720 --json "$OUT/vae_720.json" >> "$OUT/log.txt" 2>&1
run() { name=$1; shift; python3 benchmarks/magi_scale.py "$@" --json "$OUT/$name.json" >> "$OUT/log.txt" 2>&1 \
          && echo "$name ok" || echo "$name FAILED"; }
run dit45_distill_720 --variant 4.5B_distill --size 720x720 --chunks 6 --steps 16 --window 4
run dit45_base_720 --variant 4.5B_base --size 720x720 --chunks 4 --steps 16 --window 4
run dit24_distill_720 --variant 24B_distill --size 720x720 --chunks 3 --steps 8 --window 4
tail -5 "$OUT/log.txt"
