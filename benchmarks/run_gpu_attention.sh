#!/usr/bin/env bash
# One device call: FP8 attention candidates against the engine's bf16 SDPA on the 4.5B's steady window-4
# step at 720x720 (benchmarks/gpu_attention.py). Installs the cuDNN frontend from the carried wheel
# (.whl_cudnn, ignored by git: carry it) when there is one. The JSON lands in $OUT (or ./out).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl_cudnn/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl_cudnn/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
{ nvidia-smi -L; python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cudnn', torch.backends.cudnn.version())"; } 2>&1 | tee "$OUT/log.txt"
python3 benchmarks/gpu_attention.py --json "$OUT/gpu_attention.json" "$@" 2>&1 | tee -a "$OUT/log.txt" | grep -v '^ '
