#!/bin/sh
# Prints the directory holding libcudart_static.a: $CUDA_LIBDIR, else $CUDA_HOME/lib64 (or lib),
# else the toolkit nvcc belongs to (nvcc may be a wrapper script, so ask nvcc for its TOP).
set -eu
if [ -n "${CUDA_LIBDIR:-}" ]; then echo "$CUDA_LIBDIR"; exit 0; fi
candidates=""
if [ -n "${CUDA_HOME:-}" ]; then candidates="$CUDA_HOME"; fi
top=$("${NVCC:-nvcc}" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1 || true)
if [ -n "$top" ]; then candidates="$candidates $top"; fi
candidates="$candidates /usr/local/cuda"
for d in $candidates; do
  for sub in lib64 lib targets/x86_64-linux/lib targets/sbsa-linux/lib; do
    if [ -f "$d/$sub/libcudart_static.a" ]; then
      (cd "$d/$sub" && pwd -P)
      exit 0
    fi
  done
done
echo "cuda-libdir.sh: libcudart_static.a not found (set CUDA_LIBDIR)" >&2
echo /nonexistent-cuda-libdir
