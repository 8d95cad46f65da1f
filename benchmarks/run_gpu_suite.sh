#!/usr/bin/env bash
# One device call: CUDA conformance, then the engine at MAGI-1 scale. Results land in $OUT (or ./out).
# Usage (on the GPU machine, repo root): MAGI_CONFORMANCE_DIR=.device/conformance bash benchmarks/run_gpu_suite.sh
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__)"; } 2>&1 | tee "$OUT/env.txt"
python3 benchmarks/cuda_conformance.py 2>&1 | tee "$OUT/cuda_conformance.txt"
python3 benchmarks/vae_scale.py --size 720x720 --json "$OUT/vae_720.json" 2>&1 | tail -3
run() { name=$1; shift; python3 benchmarks/magi_scale.py "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 \
          && echo "$name ok" || { echo "$name FAILED"; tail -5 "$OUT/$name.log"; }; }
run dit45_distill_720 --variant 4.5B_distill --size 720x720 --chunks 6 --steps 16 --window 4
run dit45_distill_720_w1 --variant 4.5B_distill --size 720x720 --chunks 3 --steps 16 --window 1
run dit45_base_480 --variant 4.5B_base --size 832x480 --chunks 5 --steps 16 --window 4
run dit24_distill_720 --variant 24B_distill --size 720x720 --chunks 4 --steps 16 --window 4
