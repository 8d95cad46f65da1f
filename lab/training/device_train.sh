#!/usr/bin/env bash
# One GPU call of studio-mini training (the machine keeps nothing between calls).
#   bash lab/training/device_train.sh vae   MINUTES_VAE MINUTES_DIT DATA_FIRST   # first call
#   bash lab/training/device_train.sh dit   MINUTES_DIT DATA_FIRST               # later calls
#   bash lab/training/device_train.sh decoder MINUTES DEPTH[:MOTION_WEIGHT]...  # the VAE's decoder alone
# STEPS sets the end of the learning-rate schedule (default 40000), SCHEDULE_START its start (0), LR its
# peak (3e-4), BATCH the batch size (48), TWO_OBJECTS the share of two-object storyboards rendered,
# OBJECT_WEIGHT the loss's extra weight on the cells objects cover (0), CONTEXT_NOISE the largest noise
# on the clean context chunks (0), UNKNOWN_WORDS the share of captions given unknown words (0.2) and
# MAX_UNKNOWN the most of them per caption (1).
# WALL_MINUTES caps the trainer's whole run, rendering included, so that one command suits a fresh
# machine (which renders first) and a warm one alike.
# A carried DiT shallower than studio_mini.DIT is grown to its depth first (lab/training/grow.py).
# Later calls carry the previous call's dit + text parts and run.json in .device/run_in; the VAE and
# the EMA DiT come from resources/models/studio-mini, which is re-exported after every call. Results go to $OUT (< 16 MB each).
set -euo pipefail
export PYTHONUNBUFFERED=1
RUN=/tmp/studio-mini-run
OUT=${OUT:-out}; mkdir -p "$RUN" "$OUT"
stage=$1; shift
if [ "$stage" = decoder ]; then
  # Decoder-only fine-tunes of the shipped VAE (its encoder, latents and DiT stay), one per arm
  # DEPTH[:MOTION_WEIGHT] (the decoder's blocks, train_vae's --motion-weight, default 0), side by side on
  # the GPU (never beside a DiT run), then all measured by vae_continuity against the shipped VAE
  # (STORYBOARDS of them, 64). LR (2e-4) and STEPS (6000) set the schedule. Each arm comes back as
  # $OUT/d<depth>m<weight> (3 files); two arms fill the 8 files a call returns.
  minutes=$1; shift
  arms=()
  for arm in "$@"; do
    depth=${arm%%:*}; weight=0; [ "$arm" != "$depth" ] && weight=${arm#*:}
    name="d${depth}m${weight}"; arms+=("$name")
    python3 -m lab.training.train_vae --out "$RUN-$name" --init resources/models/studio-mini --decoder-only \
      --decoder-depth "$depth" --motion-weight "$weight" --minutes "$minutes" --steps "${STEPS:-6000}" \
      --lr "${LR:-2e-4}" --batch 48 --workers $((14 / $#)) --seed "$((depth + 10))" 2>&1 \
      | sed -u "s/^/$name /" >>"$OUT/log.txt" &
  done
  wait
  python3 benchmarks/vae_continuity.py --vae resources/models/studio-mini $(for a in "${arms[@]}"; do echo --vae "$RUN-$a"; done) \
    --storyboards "${STORYBOARDS:-64}" --out "$OUT/vae_continuity.json" | tail -n 40 >>"$OUT/log.txt"
  for a in "${arms[@]}"; do python3 -m lab.training.transfer pack "$RUN-$a" "$OUT/$a"; done
  exit 0
fi
if [ "$stage" = vae ]; then
  python3 -m lab.training.train_vae --out "$RUN" --minutes "$1" --batch 48 --workers 14 2>&1 | tee "$OUT/log.txt"
  dit_minutes=$2; first=$3
else
  dit_minutes=$1; first=$2
  # A machine still warm from the previous call holds that call's full state (optimiser included) and
  # its storyboards: continue from them unless the carried weights are newer.
  carried=$(python3 -c "import json; print(json.load(open('.device/run_in/run.json'))['info']['step'])")
  held=$(python3 -m lab.training.checkpoint step "$RUN/dit_state.safetensors" 2>/dev/null || echo -1)
  if [ "$held" -ge "$carried" ] && [ -f "$RUN/data.safetensors" ]; then
    echo "warm machine: continuing at step $held with its optimiser state and storyboards" | tee "$OUT/log.txt"
  else
    rm -f "$RUN"/data.safetensors "$RUN"/data_captions.json "$RUN"/dit_state.safetensors
    python3 -m lab.training.transfer complete .device/run_in resources/models/studio-mini
    python3 -m lab.training.transfer unpack .device/run_in "$RUN"
    python3 -m lab.training.grow "$RUN" | tee -a "$OUT/log.txt"
  fi
fi
python3 -m lab.training.train_dit --out "$RUN" --minutes "$dit_minutes" --batch "${BATCH:-48}" --steps "${STEPS:-40000}" --storyboards 4500 \
  --schedule-start "${SCHEDULE_START:-0}" --lr "${LR:-3e-4}" ${TWO_OBJECTS:+--two-objects "$TWO_OBJECTS"} \
  --object-weight "${OBJECT_WEIGHT:-0}" --context-noise "${CONTEXT_NOISE:-0}" \
  --unknown-words "${UNKNOWN_WORDS:-0.2}" --max-unknown "${MAX_UNKNOWN:-1}" \
  ${WALL_MINUTES:+--wall-minutes "$WALL_MINUTES"} \
  --data-first "$first" --workers 14 --probe-every 100000 2>&1 | tee -a "$OUT/log.txt"
python3 -m lab.training.transfer pack "$RUN" "$OUT"
cp "$(ls "$RUN"/probe_*.png | tail -1)" "$OUT/probe.png"
