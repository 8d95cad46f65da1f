#!/usr/bin/env bash
# Issue 23: multi-GPU generation on one several-GPU machine, one-GPU baseline included, in one call.
# Each case is one `python3 benchmarks/multi_gpu.py` run (baseline, then every GPU count up to what
# nvidia-smi lists, guidance- and sequence-parallel); its JSON lands in $OUT (or ./out) as soon as each
# setting is measured, so a call cut short still returns what it finished.
# Optional: the names of the cases to run (default: all, in this order).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# NVLink multicast stays off (the device notes, KINDS.md): a program using it can put the host's GPUs
# out of service for everyone. Exported here so every spawned rank inherits them.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export CUDA_DEVICE_MAX_CONNECTIONS=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
gpus=$(nvidia-smi -L | wc -l)
counts=$(for n in 1 2 4 8; do [ "$n" -le "$gpus" ] && printf "%s," "$n"; done); counts=${counts%,}
cases=${*:-"distill_720 base_720 24b_distill_1280"}
{ nvidia-smi -L; nvidia-smi topo -m; python3 -c "import torch; print('torch', torch.__version__)"; } >> "$OUT/log.txt" 2>&1
for name in $cases; do
  case $name in
    distill_720) args="--variant 4.5B_distill --size 720x720 --steps 16 --chunks 6 --gpus $counts" ;;
    base_720) args="--variant 4.5B_base --size 720x720 --steps 16 --chunks 6 --gpus $counts" ;;
    # 24B bf16 at 1280x720 does not fit one 80 GB GPU with its activations: its baseline row may fail
    # (reported, skipped); the sequence split holds the weights on every GPU (48 GB) and 1/N of the rest.
    24b_distill_1280) args="--variant 24B_distill --size 1280x720 --steps 16 --chunks 5 --gpus $counts --splits sequence" ;;
    *) echo "unknown case $name"; continue ;;
  esac
  start=$(date +%s)
  python3 benchmarks/multi_gpu.py $args --json "$OUT/multi_gpu_$name.json" > "$OUT/multi_gpu_$name.md" 2>> "$OUT/log.txt" \
    && echo "$name ok ($(( $(date +%s) - start )) s)" || echo "$name FAILED ($(( $(date +%s) - start )) s)"
done | tee -a "$OUT/log.txt"
cat "$OUT"/multi_gpu_*.md
