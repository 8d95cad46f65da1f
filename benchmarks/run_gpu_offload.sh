#!/usr/bin/env bash
# Device runs for issue 18's memory rows that need the DiT offload (engine/dit/offload.py) or the 24B.
# One call a group, most important case first; each case's JSON lands in $OUT (or ./out) as it is measured.
#   bash benchmarks/run_gpu_offload.sh fp8          # 4.5B distill FP8, 720x720, window 1: 12 GiB cap
#   bash benchmarks/run_gpu_offload.sh 24b          # 24B distill FP8 native, and as bf16 with T5 on the CPU
# Optional after the group: case names to run instead of the group's list. EXTRA: arguments added to every
# case (EXTRA="--cap-gib 79.1" holds an H200 to an H100 80GB's memory).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
ROOT=${MAGI_SYNTHETIC:-/tmp/magi}
group=${1:-fp8}; shift || true
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__)"; df -h /tmp | tail -1; } >> "$OUT/log.txt" 2>&1
case $group in
  fp8) variant=4.5B_distill_quant; cases=${*:-"fp8_720_w1_cap12 fp8_720_w1_none fp8_720_w1_cap12_layers"} ;;
  24b) variant=24B_distill_quant; cases=${*:-"dit24_fp8_720 dit24_bf16_720_t5cpu"} ;;
  *) echo "unknown group $group"; exit 2 ;;
esac
start=$(date +%s)
[ -d "$ROOT/ckpt/magi/$variant" ] || python3 benchmarks/synthetic_checkpoint.py "$ROOT" --variant $variant \
  >> "$OUT/log.txt" 2>&1 || { echo "synthetic checkpoint FAILED"; tail -20 "$OUT/log.txt"; exit 1; }
echo "built $variant in $(( $(date +%s) - start )) s; $(du -sh $ROOT | cut -f1)" | tee -a "$OUT/log.txt"
FP8=$ROOT/ckpt/magi/4.5B_distill_quant/inference_weight.fp8.distill
D24=$ROOT/ckpt/magi/24B_distill_quant/inference_weight.fp8.distill
W1="--size 720x720 --window 1 --steps 16 --chunks 5 --text-encoder cpu"
for name in $cases; do
  case $name in
    fp8_720_w1_cap12) args="--checkpoint $FP8 $W1 --cap-gib 12" ;;
    fp8_720_w1_none) args="--checkpoint $FP8 $W1 --dit-offload none" ;;
    fp8_720_w1_cap12_layers) args="--checkpoint $FP8 $W1 --cap-gib 12 --dit-offload layers" ;;
    fp8_720_w1_cap12_both) args="--checkpoint $FP8 $W1 --cap-gib 12 --dit-offload both" ;;
    dit24_fp8_720) args="--checkpoint $D24 --size 720x720 --window 4 --steps 8 --chunks 5" ;;
    dit24_bf16_720_t5cpu) args="--checkpoint $D24 --size 720x720 --window 4 --steps 8 --chunks 3 --dequantise --text-encoder cpu" ;;
    *) echo "unknown case $name"; continue ;;
  esac
  args="$args ${EXTRA:-}"
  start=$(date +%s)
  timeout 300 python3 benchmarks/gpu_memory.py $args --json "$OUT/$name.json" > /dev/null 2>> "$OUT/log.txt" \
    && echo "$name ok ($(( $(date +%s) - start )) s)" || echo "$name FAILED ($(( $(date +%s) - start )) s)"
done | tee -a "$OUT/log.txt"
for f in "$OUT"/*.json; do python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); k=('memory_plan','dit_offload','placement','native_fp8','load_s','estimate_gib','peak_gib','first_chunk_s','chunk_done_at_s','steady_chunk_s','tflops_steady','percent_of_bf16_peak','failed')
print(sys.argv[1].split('/')[-1], {x: d.get(x) for x in k})" "$f"; done
tail -5 "$OUT/log.txt"
