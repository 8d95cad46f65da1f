#!/usr/bin/env bash
# Compile FlashAttention 3's sources as benchmarks/fa3_build.sh builds them, here, with no GPU: nvcc 13.0 from
# PyPI's CUDA wheels (the device image's nvcc is 13.0) for the kernels, g++ against this torch's headers for the
# operator registration. Says whether they compile and how long each takes, before a device call spends minutes on it.
#   bash benchmarks/fa3_compile_check.sh [SOURCE ...]   (default: the forward's four sources)
# Needs .fa3src/fa3src.tar.xz (benchmarks/fa3_source.sh) and the network for pip (CUDA wheels, about 60 MB, cached
# in .fa3check/). Objects and logs go to .fa3check/ (git-ignored).
set -eu
root=$(pwd)
work=$root/.fa3check
python=${PYTHON:-python3}
[ -x "$root/.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && python=$root/.venv/bin/python  # the one with torch
mkdir -p "$work/wheels" "$work/cuda" "$work/src"
if [ ! -x "$work/cuda/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip download -q --no-deps -d "$work/wheels" "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" \
    "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-runtime==13.0.*"
  for wheel in "$work"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$work/cuda/"; done
  chmod +x "$work"/cuda/nvidia/cu13/bin/* "$work"/cuda/nvidia/cu13/nvvm/bin/*
fi
cuda=$work/cuda/nvidia/cu13
[ -d "$work/src/hopper" ] || tar -xJf "$root/.fa3src/fa3src.tar.xz" -C "$work/src"
# The switches fa3_build.sh sets, as setup.py turns them into defines
defines=""
for flag in BACKWARD SPLIT PAGEDKV APPENDKV LOCAL SOFTCAP PACKGQA FP16 VARLEN CLUSTER HDIM64 HDIM96 HDIM192 HDIM256 \
            SM8x HDIMDIFF64 HDIMDIFF192; do
  defines="$defines -DFLASHATTENTION_DISABLE_$flag"
done
includes="-I. -I../csrc/cutlass/include -I$cuda/include -I$cuda/include/cccl"
torch_include=$("$python" -c "import torch.utils.cpp_extension as e; print(e.include_paths()[0])")
python_include=$("$python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
cd "$work/src/hopper"
for source in ${*:-instantiations/flash_fwd_hdim128_e4m3_sm90.cu instantiations/flash_fwd_hdim128_bf16_sm90.cu \
                  flash_prepare_scheduler.cu flash_api_stable.cpp}; do
  start=$(date +%s)
  object=$work/$(basename "$source").o
  case $source in
    *.cu) command=("$cuda/bin/nvcc" -c "$source" -o "$object" -O3 -std=c++17 --use_fast_math -lineinfo
                   -DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED -DCUTLASS_ENABLE_GDC_FOR_SM90 -DCUTLASS_DEBUG_TRACE_LEVEL=0
                   -DNDEBUG -gencode arch=compute_90a,code=sm_90a --expt-relaxed-constexpr --expt-extended-lambda
                   --threads 2 -Xcompiler -fPIC) ;;
    *) command=(g++ -c "$source" -o "$object" -O2 -std=c++17 -fPIC -DPy_LIMITED_API=0x03090000
                -DTORCH_TARGET_VERSION=0x0209000000000000 -I"$torch_include" -I"$python_include") ;;
  esac
  # shellcheck disable=SC2086  (the defines and includes are words)
  if "${command[@]}" $defines $includes > "$object.log" 2>&1; then
    echo "$source: compiled in $(( $(date +%s) - start )) s ($(stat -c %s "$object") bytes)"
  else
    echo "$source: failed after $(( $(date +%s) - start )) s; last lines of $object.log:"; grep -v warning "$object.log" | tail -8
  fi
done
