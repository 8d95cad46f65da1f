#!/usr/bin/env bash
# One GPU call of studio-mini training (the machine keeps nothing between calls).
#   bash engine/training/device_train.sh vae   MINUTES_VAE MINUTES_DIT DATA_FIRST   # first call
#   bash engine/training/device_train.sh dit   MINUTES_DIT DATA_FIRST               # later calls
# Later calls carry the previous call's $OUT in .device/run_in. Results go to $OUT (fp16, < 16 MB each).
set -euo pipefail
export PYTHONUNBUFFERED=1
RUN=/tmp/studio-mini-run
OUT=${OUT:-out}; mkdir -p "$RUN" "$OUT"
stage=$1; shift
if [ "$stage" = vae ]; then
  python3 -m engine.training.train_vae --out "$RUN" --minutes "$1" --batch 48 --workers 14 2>&1 | tee "$OUT/log.txt"
  dit_minutes=$2; first=$3
else
  python3 -m engine.training.transfer unpack .device/run_in "$RUN"
  dit_minutes=$1; first=$2
fi
python3 -m engine.training.train_dit --out "$RUN" --minutes "$dit_minutes" --batch 48 --storyboards 4500 \
  --data-first "$first" --workers 14 --probe-every 100000 2>&1 | tee -a "$OUT/log.txt"
python3 -m engine.training.transfer pack "$RUN" "$OUT"
cp "$(ls "$RUN"/probe_*.png | tail -1)" "$OUT/probe.png"
