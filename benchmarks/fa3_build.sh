#!/usr/bin/env bash
# Build FlashAttention 3's Hopper kernels (the flash-attention repository's hopper/, not on PyPI) on the device,
# whose image has nvcc 13.0, for the FP8 attention backend "fa3" (magi_engine.dit.fp8_attention; issue 18).
# Only what the engine calls is compiled: the forward, head dim 128, bf16 and e4m3, sm90a, no split, paged,
# packed-GQA, local, soft-cap, varlen or cluster variants; so the build is minutes, not an hour.
#   bash benchmarks/fa3_build.sh      reads .fa3src/fa3src.tar.xz, builds into .fa3build/ (kept while the
#                                     machine stays warm), prints the PYTHONPATH that imports flash_attn_3
# .fa3src/fa3src.tar.xz holds hopper/ and csrc/cutlass/include/ at the commits .fa3src/SOURCE names
# (benchmarks/fa3_source.sh packs it); carry .fa3src.
set -eu
root=$(pwd)
build=${FA3_BUILD:-$root/.fa3build}
if ! ls "$build"/hopper/flash_attn_3/_C*.so >/dev/null 2>&1; then
  rm -rf "$build" && mkdir -p "$build"
  tar -xJf "$root/.fa3src/fa3src.tar.xz" -C "$build"
  touch "$build/README.md"  # setup.py reads ../README.md for its long description
  # setup.py imports wheel's bdist_wheel; setuptools carries the same class where wheel is not installed
  if ! python3 -c "import wheel.bdist_wheel" 2>/dev/null; then
    mkdir -p "$build/shim/wheel"
    : > "$build/shim/wheel/__init__.py"
    echo "from setuptools.command.bdist_wheel import bdist_wheel" > "$build/shim/wheel/bdist_wheel.py"
    export PYTHONPATH="$build/shim${PYTHONPATH:+:$PYTHONPATH}"
  fi
  for flag in BACKWARD SPLIT PAGEDKV APPENDKV LOCAL SOFTCAP PACKGQA FP16 VARLEN CLUSTER HDIM64 HDIM96 HDIM192 \
              HDIM256 HDIMDIFF64 HDIMDIFF192 SM80; do
    export "FLASH_ATTENTION_DISABLE_$flag=TRUE"
  done
  export FLASH_ATTENTION_FORCE_BUILD=TRUE MAX_JOBS=${MAX_JOBS:-16} NVCC_THREADS=${NVCC_THREADS:-2}
  start=$(date +%s)
  (cd "$build/hopper" && python3 setup.py build_ext --inplace) > "$build/build.log" 2>&1 || {
    echo "FA3 build failed after $(( $(date +%s) - start )) s; last lines:"; grep -v '^ptxas info\|^ *Function properties\|bytes stack' "$build/build.log" | tail -25; exit 1; }
  echo "FA3 built in $(( $(date +%s) - start )) s: $(ls "$build"/hopper/flash_attn_3/_C*.so)"
fi
echo "export PYTHONPATH=$build/hopper"
