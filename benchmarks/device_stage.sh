#!/usr/bin/env bash
# Packages too large for one device call's carry (64 MiB with the working tree) travel in parts over
# consecutive calls to the same warm machine:
#   bash benchmarks/device_stage.sh keep DIR     copy DIR's files (part_NN pieces, wheels/*.whl) to /tmp/stage
#   bash benchmarks/device_stage.sh install      join the parts (one .tar.xz), install the wheels to /tmp/site,
#                                                unpack the archive over them; then export PYTHONPATH as printed
# Used for FlashAttention 4 (flash-attn-4 and the CuTe DSL, whose compiler library alone is 66 MB as .tar.xz).
set -eu
case $1 in
  keep)
    mkdir -p /tmp/stage/wheels
    find "$2" -maxdepth 1 -name 'part_*' -exec cp {} /tmp/stage/ \;
    [ -d "$2/wheels" ] && cp "$2"/wheels/*.whl /tmp/stage/wheels/ 2>/dev/null || true
    ls -la /tmp/stage /tmp/stage/wheels ;;
  install)
    mkdir -p /tmp/site
    if ls /tmp/stage/wheels/*.whl >/dev/null 2>&1; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site /tmp/stage/wheels/*.whl
    fi
    if ls /tmp/stage/part_* >/dev/null 2>&1; then
      cat /tmp/stage/part_* | tar -xJ -C /tmp/site  # after pip: pip --target skips folders that exist
    fi
    echo "export PYTHONPATH=/tmp/site:/tmp/site/nvidia_cutlass_dsl/dsl_packages" ;;
esac
