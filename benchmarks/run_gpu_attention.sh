#!/usr/bin/env bash
# One device call for FP8 attention (issue 18), each result a JSON in $OUT (or ./out) as soon as it is measured:
# 1. benchmarks/gpu_attention.py: the candidates against the engine's bf16 SDPA on the 4.5B's steady window-4
#    step at 720x720 (errors against float32, quantisation costs);
# 2. end to end, benchmarks/gpu_speed.py run --path fp8 without and with FP8 attention (the fastest error-free
#    candidate of 1), same process order, same machine; 3. gpu_speed.py accuracy with it.
# The cuDNN frontend comes from the carried wheel (.whl_cudnn, ignored by git: carry it) when there is one.
# Optional: the steps to run (default: "attention speed accuracy").
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
steps=${*:-"attention speed accuracy"}
if ls .whl_cudnn/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl_cudnn/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
{ nvidia-smi -L; python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cudnn', torch.backends.cudnn.version())"; } 2>&1 | tee "$OUT/log.txt"
common="--variant 4.5B_distill --size 720x720 --steps 16 --window 4 --chunks 5"
for step in $steps; do
  start=$(date +%s)
  case $step in
    attention)
      timeout 200 python3 benchmarks/gpu_attention.py --json "$OUT/gpu_attention.json" > "$OUT/attention.stdout" 2>> "$OUT/log.txt"
      tail -16 "$OUT/attention.stdout" | grep -v '^ ' | tee -a "$OUT/log.txt"; rm -f "$OUT/attention.stdout" ;;
    speed|accuracy)
      best=$(python3 -c "
import json, os
path = '$OUT/gpu_attention.json'
t = json.load(open(path if os.path.exists(path) else '$OUT/gpu_attention.partial.json'))['timings']
ok = {k: v['layer_ms'] for k, v in t.items() if k.startswith(('cudnn', 'triton')) and 'layer_ms' in v
      and not k.endswith('kernels_only')}
best = min(ok, key=ok.get) if ok else ''
print('cudnn' if best.startswith('cudnn') else 'triton' if best else 'off')" 2>> "$OUT/log.txt" || echo off)
      echo "FP8 attention backend for $step: $best" | tee -a "$OUT/log.txt"
      [ "$best" = off ] && continue
      if [ $step = speed ]; then
        for fa in off $best; do
          # A cold compile and 5 chunks take about 110 s; a case the timeout stops says so in the log.
          timeout 240 python3 benchmarks/gpu_speed.py run --path fp8 --fp8-attention $fa $common \
            --json "$OUT/gpu_speed_fp8_w4_attention_$fa.json" > /dev/null 2>> "$OUT/log.txt" \
            || { echo "$fa: gpu_speed.py exited with status $?" | tee -a "$OUT/log.txt"; continue; }
          python3 -c "import json; d = json.load(open('$OUT/gpu_speed_fp8_w4_attention_$fa.json')); print('$fa', d['steady_step_s'], d['steady_chunk_s'], d['tflops'], 'fell back' if d['fp8_attention_fell_back'] else '')" | tee -a "$OUT/log.txt"
        done
      else
        timeout 240 python3 benchmarks/gpu_speed.py accuracy --fp8-attention $best --variant 4.5B_distill \
          --size 720x720 --json "$OUT/gpu_speed_accuracy_fp8_attention.json" > /dev/null 2>> "$OUT/log.txt" \
          || echo "accuracy: gpu_speed.py exited with status $?" | tee -a "$OUT/log.txt"
      fi ;;
  esac
  echo "$step done ($(( $(date +%s) - start )) s)" | tee -a "$OUT/log.txt"
done
tail -5 "$OUT/log.txt"
