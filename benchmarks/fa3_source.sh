#!/usr/bin/env bash
# Pack FlashAttention 3's sources for benchmarks/fa3_build.sh: hopper/ of the flash-attention repository and
# include/ of CUTLASS at the commit flash-attention pins as its csrc/cutlass submodule, into
# .fa3src/fa3src.tar.xz (1.1 MB; carried to the device, which has nvcc but no network), the commits in .fa3src/SOURCE.
#   bash benchmarks/fa3_source.sh FLASH_ATTENTION_GIT_DIR CUTLASS_GIT_DIR [FLASH_ATTENTION_COMMIT]
# Both arguments are clones (or bare mirrors) of github.com/Dao-AILab/flash-attention and github.com/NVIDIA/cutlass;
# measured with flash-attention 0251105a2fb19d2957484b7f023cd8c115286ced.
set -eu
fa=$1 cutlass=$2 commit=${3:-0251105a2fb19d2957484b7f023cd8c115286ced}
pinned=$(git -C "$fa" ls-tree "$commit" csrc/cutlass | awk '{print $3}')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/csrc/cutlass" .fa3src
git -C "$fa" archive "$commit" hopper | tar -x -C "$work"
git -C "$cutlass" archive "$pinned" include | tar -x -C "$work/csrc/cutlass"
tar -cJf .fa3src/fa3src.tar.xz -C "$work" .
printf 'FlashAttention 3 (hopper/) at %s with CUTLASS include/ at %s\n' "$commit" "$pinned" > .fa3src/SOURCE
cat .fa3src/SOURCE
