#!/usr/bin/env bash
# One device call for the fused Triton kernels (issue 18, "fuse the memory-bound 24%"), within 8 minutes on an H100.
# Each result is a JSON in $OUT (or ./out) as soon as it is measured; each case's stderr in $OUT/<case>.log; a
# summary line per case in $OUT/log.txt (a case that fails or is stopped by its timeout says so there).
#   fusions                  benchmarks/gpu_fusions.py: each kernel against its torch expression, eager and compiled,
#                            at the 4.5B's shapes, errors against float64; one layer's compiled dense parts with/without
#   profile_compiled         gpu_speed.py profile --path compiled: a steady step's kernel time, attention/GEMM/other
#   run_compiled             gpu_speed.py run --path compiled (the baseline: 4.5B distill, 720x720, 16 steps, window 4)
#   run_compiled_fused       the same with --fused-kernels
#   profile_compiled_fused   the profile with --fused-kernels
# Optional: the cases to run (default: those five, in that order; also: accuracy_fused, run_eager_fused).
# BUDGET (seconds, default 470): no case starts after it, each case's timeout is cut to what is left of it.
# SMOKE=1: the tiny DiT on a CPU, compile's eager backend (a test of this script, not a measurement).
# PYTHON: the interpreter (default python3).
set -u
PY=${PYTHON:-python3}
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
budget_end=$(( $(date +%s) + ${BUDGET:-470} ))
cases=${*:-"fusions profile_compiled run_compiled run_compiled_fused profile_compiled_fused"}
common="--variant 4.5B_distill --size 720x720 --window 4 --chunks 5"
fusions_args=""
if [ "${SMOKE:-0}" = 1 ]; then
  common="--variant tiny --size 64x64 --compile-backend eager --window 4 --chunks 5"
  fusions_args="--tiny --tokens 24 --chunks 3 --compile-backend eager --repeats 2"
fi
# Profiles: 8 steps (2 a stage) reach the steady stage sooner; a steady step costs the same at 8 or 16 steps.
profile="profile --path compiled $common --steps 8 --profile-steps 1"
{ date -u; nvidia-smi -L; $PY -c "import torch; print('torch', torch.__version__)"
  $PY -c "import triton; print('triton', triton.__version__)" || echo "no triton: the fused cases will fail"
} 2>&1 | tee -a "$OUT/log.txt"
summary() {  # one line of a case's JSON
  $PY - "$1" "$2" <<'EOF' 2>&1
import json, sys
name, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
if name == "fusions":
    print("per-step ms (34 layers):", json.dumps(d.get("per_step_ms")))
    layer = d.get("layer", {})
    print("one layer's compiled dense parts:", {k: layer.get(k) for k in ("compiled", "compiled_fused",
                                                                          "fused_vs_unfused_max_abs")})
elif name.startswith("profile"):
    shares = {k: d[k]["share_of_step"] for k in ("attention", "gemm", "other")}
    print(f"step {d['step_s']} s, shares {shares}, idle {d['idle_share']}; top other:",
          [(r["name"][:60], r["share_of_step"]) for r in d["top_other"][:6]])
elif name.startswith("run"):
    print(f"steady step {d['steady_step_s']} s, chunk {d['steady_chunk_s']} s, {d['tflops']} TFLOP/s "
          f"({d['percent_of_bf16_peak']}% of {d['bf16_matmul_peak_tflops']}), graphs {d['unique_graphs_at_end']}, "
          f"peak {d['peak_gib']} GiB, total {d['total_s']} s")
else:
    print({k: v for k, v in d.items() if k.startswith(("fused", "compiled"))})
EOF
}
for name in $cases; do
  case $name in
    fusions) cmd="benchmarks/gpu_fusions.py $fusions_args"; limit=180 ;;
    profile_compiled) cmd="benchmarks/gpu_speed.py $profile"; limit=120 ;;
    profile_compiled_fused) cmd="benchmarks/gpu_speed.py $profile --fused-kernels"; limit=120 ;;
    run_compiled) cmd="benchmarks/gpu_speed.py run --path compiled $common --steps 16"; limit=200 ;;
    run_compiled_fused) cmd="benchmarks/gpu_speed.py run --path compiled $common --steps 16 --fused-kernels"; limit=200 ;;
    run_eager_fused) cmd="benchmarks/gpu_speed.py run --path eager $common --steps 16 --fused-kernels"; limit=200 ;;
    accuracy_fused) cmd="benchmarks/gpu_speed.py accuracy ${common% --window*} --fused-kernels"; limit=200 ;;
    *) echo "unknown case $name" | tee -a "$OUT/log.txt"; continue ;;
  esac
  left=$(( budget_end - $(date +%s) ))
  if [ "$left" -lt 30 ]; then
    echo "$name SKIPPED: ${left} s left of the budget" | tee -a "$OUT/log.txt"; continue
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  start=$(date +%s)
  echo "$name: $PY $cmd (timeout $limit s)" >> "$OUT/log.txt"
  timeout "$limit" $PY $cmd --json "$OUT/$name.json" > /dev/null 2> "$OUT/$name.log"
  status=$?
  took=$(( $(date +%s) - start ))
  if [ $status -eq 0 ]; then
    echo "$name ok (${took} s): $(summary "$name" "$OUT/$name.json")"
  elif [ $status -eq 124 ]; then
    echo "$name STOPPED by its ${limit} s timeout (${took} s); last lines of $name.log:"; tail -3 "$OUT/$name.log"
  else
    echo "$name FAILED with status $status (${took} s); last lines of $name.log:"; tail -5 "$OUT/$name.log"
  fi | tee -a "$OUT/log.txt"
done
echo "done after $(( $(date +%s) - budget_end + ${BUDGET:-470} )) s" | tee -a "$OUT/log.txt"
