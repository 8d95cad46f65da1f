#!/usr/bin/env bash
# One device call: build the synthetic full-size checkpoints (4.5B distill bf16 and FP8, VAE, T5-XXL) in
# /tmp, then the end-to-end memory and first-chunk cases of benchmarks/gpu_memory.py, most important first.
# Each result is a JSON file in $OUT (or ./out), written as soon as it is measured. Optional: case names.
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
ROOT=${MAGI_SYNTHETIC:-/tmp/magi}
cases=${*:-"bf16_720_w4_cap24 fp8_720_w1 bf16_832x480_w4_cap16 bf16_720_w1"}
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__)"; } >> "$OUT/log.txt" 2>&1
[ -d "$ROOT/ckpt" ] || python3 benchmarks/synthetic_checkpoint.py "$ROOT" --variant 4.5B_distill 4.5B_distill_quant \
  >> "$OUT/log.txt" 2>&1 || { echo "synthetic checkpoint FAILED"; tail -20 "$OUT/log.txt"; exit 1; }
BF16=$ROOT/ckpt/magi/4.5B_distill/inference_weight.distill
FP8=$ROOT/ckpt/magi/4.5B_distill_quant/inference_weight.fp8.distill
for name in $cases; do
  case $name in
    bf16_720_w4_cap24) args="--checkpoint $BF16 --size 720x720 --window 4 --steps 16 --chunks 5 --cap-gib 24 --regenerate-from 4 --draft" ;;
    bf16_832x480_w4_cap16) args="--checkpoint $BF16 --size 832x480 --window 4 --steps 8 --chunks 5 --cap-gib 16 --regenerate-from 4" ;;
    fp8_720_w1) args="--checkpoint $FP8 --size 720x720 --window 1 --steps 16 --chunks 5 --text-encoder cpu" ;;
    bf16_720_w4_cap24_gen) args="--checkpoint $BF16 --size 720x720 --window 4 --steps 16 --chunks 5 --cap-gib 24 --regenerate-from 4 --encode-first" ;;
    bf16_832x480_w4_cap16_gen) args="--checkpoint $BF16 --size 832x480 --window 4 --steps 8 --chunks 5 --cap-gib 16 --regenerate-from 4 --encode-first" ;;
    fp8_720_w1_cap12) args="--checkpoint $FP8 --size 720x720 --window 1 --steps 16 --chunks 5 --cap-gib 12 --text-encoder cpu" ;;
    bf16_720_w1) args="--checkpoint $BF16 --size 720x720 --window 1 --steps 16 --chunks 1" ;;
    bf16_720_w4_compiled) args="--checkpoint $BF16 --size 720x720 --window 4 --steps 16 --chunks 5 --compile" ;;
    *) echo "unknown case $name"; continue ;;
  esac
  start=$(date +%s)
  python3 benchmarks/gpu_memory.py $args --json "$OUT/$name.json" > /dev/null 2>> "$OUT/log.txt" \
    && echo "$name ok ($(( $(date +%s) - start )) s)" || echo "$name FAILED ($(( $(date +%s) - start )) s)"
done | tee -a "$OUT/log.txt"
for f in "$OUT"/*.json; do python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); k=('placement','estimate_gib','peak_gib_encode','peak_gib_generate','peak_reserved_gib_generate','peak_gib','first_chunk_s','failed')
print(sys.argv[1].split('/')[-1], {x: d.get(x) for x in k}, {x: {y: d[x].get(y) for y in ('first_chunk_s','peak_gib','t5_forwards','failed')} for x in ('regenerate','draft') if x in d})" "$f"; done
tail -5 "$OUT/log.txt"
