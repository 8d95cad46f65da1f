#!/usr/bin/env bash
# One device call for FlashAttention 4 end to end (issue 18), after benchmarks/device_stage.sh has staged
# flash-attn-4 and the CuTe DSL in /tmp/stage over earlier calls to the same warm machine (their parts are
# larger than one call's carry); carry .whl_cudnn for the FP8 case. Each case one JSON in $OUT, a summary line
# in $OUT/log.txt; a case that fails or is stopped says so there, with its last lines.
#   bash benchmarks/run_gpu_flash.sh [CASE ...]   (default: all but onload and baseline)
# Without the staged FA4 the --flash-attention cases run FlashAttention 3's bf16 kernel where .fa3src built it, else
# SDPA (each JSON says it fell back). A case named twice runs twice (name@2.json the second). The attention case
# takes ATTENTION_KINDS (inputs) and ATTENTION_CANDIDATES (name prefixes; default all). Carry .fa3src for
# FlashAttention 3 (benchmarks/fa3_build.sh builds it first): the fa3 cases and the attention case's fa3 rows.
# `baseline` runs compiled_fused_flash from .baseline/, an earlier commit's engine, lab and benchmarks written there
# first (`mkdir .baseline && git archive COMMIT engine lab benchmarks | tar -x -C .baseline`), in the same call.
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
bash benchmarks/device_stage.sh install > /dev/null
if ls .whl_cudnn/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl_cudnn/*.whl
fi
export PYTHONPATH=/tmp/site:/tmp/site/nvidia_cutlass_dsl/dsl_packages
{ nvidia-smi -L; python3 -c "import torch, flash_attn.cute; print('torch', torch.__version__, 'flash_attn.cute ok')"; } 2>&1 | tee "$OUT/log.txt"
if [ -f .fa3src/fa3src.tar.xz ]; then  # FlashAttention 3's Hopper forward, built here (minutes; kept while warm)
  if fa3=$(timeout "${FA3_BUILD_LIMIT:-480}" bash benchmarks/fa3_build.sh 2>&1); then
    export PYTHONPATH=$PYTHONPATH:$(echo "$fa3" | sed -n 's/^export PYTHONPATH=//p')
  else
    fa3="$fa3
FA3 not built (status $?; 124: stopped at FA3_BUILD_LIMIT, ${FA3_BUILD_LIMIT:-480} s; .fa3build/build.log has the rest)"
  fi
  echo "$fa3" | grep -v '^export' | tee -a "$OUT/log.txt"
fi
common="--variant 4.5B_distill --size 720x720 --steps 16 --window 4 --chunks 5"
summary='import json, sys; d = json.load(open(sys.argv[1])); r = d.get("run_compiled", d)
print(*(f"{k} {r[k]}" for k in ("steady_step_s", "steady_chunk_s", "tflops", "percent_of_bf16_peak", "peak_gib") if k in r),
      *(f"{k} {v}" for k, v in d.items() if isinstance(v, dict) and "rel_l2" in v), "fell back" if d.get("flash_attention_fell_back") or d.get("fp8_attention_fell_back") else "")'
run_case() {  # name, timeout, gpu_speed.py arguments
  local name=$1 limit=$2; shift 2
  local start; start=$(date +%s)
  local base=$name again=1
  while [ -e "$OUT/$name.json" ]; do again=$((again + 1)); name=$base@$again; done  # a case run again: name@2, …
  local script=benchmarks/gpu_speed.py
  case $name in baseline*) script=.baseline/benchmarks/gpu_speed.py ;; esac
  if timeout "$limit" python3 "$script" "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1; then
    echo "$name ($(( $(date +%s) - start )) s): $(python3 -c "$summary" "$OUT/$name.json" 2>&1)" | tee -a "$OUT/log.txt"
  else
    echo "$name: exited with status $? after $(( $(date +%s) - start )) s; last lines:" | tee -a "$OUT/log.txt"
    tail -5 "$OUT/$name.log" | tee -a "$OUT/log.txt"
  fi
  rm -f "$OUT/$name.log"
}
for case in ${*:-compiled_fused compiled_fused_flash accuracy_flash fp8_all}; do
  case $case in
    compiled_fused) run_case $case 150 run --path compiled --fused-kernels $common ;;
    compiled_fused_flash) run_case $case 200 run --path compiled --fused-kernels --flash-attention $common ;;
    compiled_fused_flash_gelu) run_case $case 200 run --path compiled --fused-kernels --flash-attention --gelu-epilogue $common ;;
    compiled_fused_flash_self) run_case $case 200 run --path compiled --fused-kernels --flash-attention self $common ;;
    baseline) (cd .baseline && python3 -c "import lab, magi_engine; print('baseline engine:', magi_engine.__file__)") \
                2>&1 | tee -a "$OUT/log.txt"
              run_case $case 200 run --path compiled --fused-kernels --flash-attention $common ;;
    profile_fused_flash) run_case $case 200 profile --path compiled --fused-kernels --flash-attention --variant 4.5B_distill \
                           --size 720x720 --window 4 --chunks 5 --steps 8 --profile-steps 1 ;;
    profile_fp8) run_case $case 200 profile --path fp8 --fp8-attention cudnn --fused-kernels --flash-attention \
                   --variant 4.5B_distill --size 720x720 --window 4 --chunks 5 --steps 8 --profile-steps 1 ;;
    accuracy_flash) run_case $case 200 accuracy --flash-attention --gelu-epilogue --variant 4.5B_distill --size 720x720 ;;
    fp8_all) run_case $case 150 run --path fp8 --fp8-attention cudnn --fused-kernels --flash-attention --gelu-epilogue $common ;;
    fp8_fused) run_case $case 150 run --path fp8 --fused-kernels --flash-attention --gelu-epilogue $common ;;
    baseline_fp8) (cd .baseline && python3 -c "import lab, magi_engine; print('baseline engine:', magi_engine.__file__)") \
                    2>&1 | tee -a "$OUT/log.txt"
                  run_case $case 150 run --path fp8 --fp8-attention cudnn --fused-kernels --flash-attention --gelu-epilogue $common ;;
    accuracy_fp8) run_case $case 200 accuracy --fp8-attention cudnn --variant 4.5B_distill --size 720x720 ;;
    fp8_fa3) run_case $case 150 run --path fp8 --fp8-attention fa3 --fused-kernels --flash-attention --gelu-epilogue $common ;;
    baseline_fp8_fa3) (cd .baseline && python3 -c "import lab, magi_engine; print('baseline engine:', magi_engine.__file__)") \
                        2>&1 | tee -a "$OUT/log.txt"
                      run_case $case 150 run --path fp8 --fp8-attention fa3 --fused-kernels --gelu-epilogue $common ;;
    fp8_fa3_sdpa_bf16) run_case $case 150 run --path fp8 --fp8-attention fa3 --fused-kernels --gelu-epilogue $common ;;
    accuracy_fp8_fa3) run_case $case 200 accuracy --fp8-attention fa3 --variant 4.5B_distill --size 720x720 ;;
    profile_fp8_fa3) run_case $case 200 profile --path fp8 --fp8-attention fa3 --fused-kernels --flash-attention \
                       --variant 4.5B_distill --size 720x720 --window 4 --chunks 5 --steps 8 --profile-steps 1 ;;
    attention)  # FP8 attention's kernels on one layer (errors against float32, timings): its own JSON and summary
      start=$(date +%s)
      if timeout 200 python3 benchmarks/gpu_attention.py --kinds "${ATTENTION_KINDS:-random,qk_norm,qk_norm_gain2}" \
           ${ATTENTION_CANDIDATES:+--candidates "$ATTENTION_CANDIDATES"} --json "$OUT/attention.json" > "$OUT/attention.log" 2>&1; then
        echo "attention ($(( $(date +%s) - start )) s):" | tee -a "$OUT/log.txt"
        python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
for kind, row in d["accuracy"].items():
    errors = {n: (e.get("max_abs_over_max_abs", e.get("error", "")), e.get("rel_l2", "")) for n, e in row.items() if isinstance(e, dict)}
    print(kind, *(f"{n} {a!s:.6} {r!s:.6}" for n, (a, r) in errors.items()))
for n, t in d["timings"].items(): print(n, t.get("layer_ms"), t.get("tflops"), t.get("error", ""))' "$OUT/attention.json" 2>&1 | tee -a "$OUT/log.txt"
      else
        echo "attention: exited with status $? after $(( $(date +%s) - start )) s; last lines:" | tee -a "$OUT/log.txt"
        tail -5 "$OUT/attention.log" | tee -a "$OUT/log.txt"
      fi
      rm -f "$OUT/attention.log" ;;
    onload) run_case $case 150 onload --no-calibration-variants $common ;;
  esac
done
