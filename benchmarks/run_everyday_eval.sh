#!/usr/bin/env bash
# One device call: studio-mini's evaluation on the held-out everyday words (lab/everyday_eval.py), with
# the lexicon and without it (a copy of the model folder less lexicon.json), i.e.
#   python -m lab.everyday_eval --words heldout --model studio-mini --storyboards 64 --i2v 0 --rollout-chunks 0
# and the same with --model that copy. Each run is cut into SHARDS consecutive seed ranges run at once
# (one `magi-studio generate` per storyboard is mostly process start), then joined by
# `python -m lab.everyday_eval --merge`. Writes $OUT (or ./out): everyday_heldout_lexicon.json,
# everyday_heldout_no_lexicon.json, log.txt.
# The device starts bare: imageio-ffmpeg travels as a wheel in .whl (README of the device tool), and
# magi_engine / magi_resources are this checkout's engine/ and resources/ through links in /tmp/site.
# Local check: PY=.venv/bin/python SHARDS=1 PER_SHARD=1 DEVICE=cpu sh benchmarks/run_everyday_eval.sh
# On a CPU, a part at a time: FIRST_SEED=1008 SHARDS=1 PER_SHARD=8 DEVICE=cpu ... (then --merge the parts).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
PY=${PY:-python3}; SHARDS=${SHARDS:-16}; PER_SHARD=${PER_SHARD:-4}; DEVICE=${DEVICE:-auto}; CHUNKS=${CHUNKS:-4}
SHARD_LIMIT_S=${SHARD_LIMIT_S:-900}  # a shard still running then is stopped; the join then names the gap
FIRST_SEED=${FIRST_SEED:-1000}  # the evaluator's --seed of the first shard (1000: its own held-out storyboards)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
work=$(mktemp -d /tmp/everyday-XXXX)
if ls .whl/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" .whl/*.whl \
    || exit 1
  ln -sfn "$PWD/engine" "$work/site/magi_engine"; ln -sfn "$PWD/resources" "$work/site/magi_resources"
  export PYTHONPATH="$work/site:$PWD"
fi
{ nvidia-smi -L 2>&1; "$PY" -c "import torch, cv2, imageio_ffmpeg, magi_engine, lab.everyday_eval
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ffmpeg', imageio_ffmpeg.get_ffmpeg_exe())"; } \
  >> "$OUT/log.txt" 2>&1 || { cat "$OUT/log.txt"; exit 1; }
baseline="$work/studio-mini-no-lexicon"
mkdir -p "$baseline" && cp resources/models/studio-mini/* "$baseline"/ && rm "$baseline/lexicon.json"
start=$(date +%s)
for model in studio-mini "$baseline"; do
  name=$([ "$model" = studio-mini ] && echo lexicon || echo no_lexicon)
  for s in $(seq 0 $((SHARDS - 1))); do
    timeout "$SHARD_LIMIT_S" "$PY" -m lab.everyday_eval --words heldout --model "$model" --storyboards "$PER_SHARD" --chunks "$CHUNKS" \
      --seed $((FIRST_SEED + s * PER_SHARD)) --i2v 0 --rollout-chunks 0 --device "$DEVICE" --out "$work/$name/$s" \
      > "$work/$name.$s.log" 2>&1 &
  done
done
wait
echo "all shards done in $(( $(date +%s) - start )) s" | tee -a "$OUT/log.txt"
for name in lexicon no_lexicon; do
  tail -n 3 "$work/$name".*.log >> "$OUT/log.txt"
  "$PY" -m lab.everyday_eval --merge "$OUT/everyday_heldout_$name.json" "$work/$name"/*/results.json 2>&1 \
    | tee -a "$OUT/log.txt"
done
