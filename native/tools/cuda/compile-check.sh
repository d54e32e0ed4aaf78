#!/usr/bin/env bash
# Compiles every CUDA source (native/src/**/*.cu, native/tools/cuda/*.cu) for sm_80, sm_90 and sm_90a with
# -c only: no GPU needed. Warnings are errors (CUDA_WERROR=0 relaxes that). Exits non-zero when any
# file fails and prints what it compiled.
#
#   bash native/tools/cuda/compile-check.sh [--run-cpu-checks]
#
# --run-cpu-checks: also links the harness from the objects just built and runs its CPU-side checks
# (`harness --cpu-only`). Env: NVCC, JOBS (parallel compiles, default 2), CUBLAS_CFLAGS/CUBLAS_LDFLAGS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
NVCC="${NVCC:-nvcc}"
JOBS="${JOBS:-2}"
run_cpu_checks=0
for arg in "$@"; do
  case "$arg" in
    --run-cpu-checks) run_cpu_checks=1 ;;
    *) echo "usage: $0 [--run-cpu-checks]" >&2; exit 2 ;;
  esac
done

if ! command -v "$NVCC" >/dev/null 2>&1; then
  echo "compile-check: nvcc not found ($NVCC)" >&2
  exit 127
fi

archs=(80 90 90a)
arch_list="$(printf 'sm_%s, ' "${archs[@]}")"
arch_list="${arch_list%, }"
gencode=()
for a in "${archs[@]}"; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
flags=(-std=c++17 -O3 -lineinfo -Xcompiler -Wall,-Wextra)
if [ "${CUDA_WERROR:-1}" != 0 ]; then flags+=(-Werror all-warnings -Xcompiler -Werror); fi

# The harness includes kernel headers from native/src (as its Makefile does); its cuBLAS
# baselines are compiled when the header is there.
harness_defs=(-Inative/src)
cublas_cflags=(${CUBLAS_CFLAGS:-})
if echo '#include <cublas_v2.h>' | "$NVCC" "${cublas_cflags[@]}" -x cu -E - -o /dev/null >/dev/null 2>&1; then
  harness_defs+=(-DBNN_HAVE_CUBLAS "${cublas_cflags[@]}")
fi

out="$here/build/compile-check"
rm -rf "$out"
mkdir -p "$out"
mapfile -t files < <(cd "$root" && find native/src native/tools/cuda -name '*.cu' -not -path 'native/tools/cuda/build/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "compile-check: no .cu files found" >&2
  exit 1
fi

echo "compile-check: $($NVCC --version | tail -1)"
echo "compile-check: ${#files[@]} files x $arch_list (-c only, $JOBS in parallel)"
start=$(date +%s)

compile_one() {
  local f="$1" obj log t0 extra=()
  obj="$out/$(echo "$f" | tr '/' '_' | sed 's/\.cu$/.o/')"
  log="$obj.log"
  [ "$(basename "$f")" = harness.cu ] && extra=("${harness_defs[@]}")
  t0=$(date +%s)
  if (cd "$root" && "$NVCC" "${flags[@]}" "${gencode[@]}" "${extra[@]}" -c "$f" -o "$obj") >"$log" 2>&1; then
    echo "  ok    $f  [$arch_list]  $(($(date +%s) - t0))s"
  else
    echo "  FAIL  $f"
    sed 's/^/        /' "$log"
    touch "$obj.failed"
  fi
}

running=0
for f in "${files[@]}"; do
  compile_one "$f" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=$(find "$out" -name '*.failed' | wc -l)
echo "compile-check: $((${#files[@]} - failed))/${#files[@]} files compiled in $(($(date +%s) - start))s"
if [ "$failed" -ne 0 ]; then
  exit 1
fi

if [ "$run_cpu_checks" = 1 ]; then
  libs=()
  if [[ " ${harness_defs[*]} " == *" -DBNN_HAVE_CUBLAS "* ]]; then libs=(${CUBLAS_LDFLAGS:--lcublas}); fi
  "$NVCC" "${gencode[@]}" -o "$out/harness" "$out"/*.o "${libs[@]}"
  "$out/harness" --cpu-only
fi
