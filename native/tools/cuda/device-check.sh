#!/usr/bin/env bash
# One-shot GPU check of the CUDA kernels, for a machine with an NVIDIA GPU, nvcc and cuBLAS (no Node,
# no network). From the repo root:
#
#   bash native/tools/cuda/device-check.sh
#
# 1. builds the harness for the GPU's architecture (with the cuBLAS baselines when cuBLAS is found);
# 2. runs a subset of the checks under compute-sanitizer memcheck and racecheck (when installed;
#    BNN_SANITIZE=0 skips them);
# 3. runs every check (bit-exact against the scalar references) and the timings; the table is last.
# Exits non-zero on a build failure, any mismatch, or a sanitizer error. BNN_SEED=N fixes the inputs.
# Aimed at < 5 minutes on an H100.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NVCC="${NVCC:-nvcc}"
build="$here/build/device"
log="$build/device-check.log"
mkdir -p "$build"
: >"$log"
say() { echo "device-check: $*" | tee -a "$log"; }

if ! command -v "$NVCC" >/dev/null 2>&1; then
  for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do [ -x "$c" ] && NVCC="$c" && break; done
fi
command -v "$NVCC" >/dev/null 2>&1 || { say "nvcc not found"; exit 1; }
say "$($NVCC --version | tail -1)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,compute_cap,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$log"
else
  say "nvidia-smi not found"
fi

# Machine code for this GPU only when it is one the kernels target; else the default list + PTX.
cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
case "$cc" in
  80 | 86 | 87 | 89 | 90) archs="$cc" ;;
  *) archs="80 90" ;;
esac

# cuBLAS: the toolkit's own (nvcc finds it), else a pip wheel (nvidia/cu13 or nvidia/cublas), else a search.
cublas_cflags=""
cublas_ldflags=""
cublas_libdir=""
lib_flags() {  # $1 = directory holding libcublas.so*
  local d="$1" name
  if [ -e "$d/libcublas.so" ]; then
    name="-lcublas"
  else
    name="-l:$(cd "$d" && ls libcublas.so.* 2>/dev/null | sort -V | tail -1)"
  fi
  cublas_libdir="$d"
  cublas_ldflags="-L$d $name -Xlinker -rpath,$d"
}
top="$("$NVCC" -dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)"
if echo '#include <cublas_v2.h>' | "$NVCC" -x cu -E - -o /dev/null >/dev/null 2>&1; then
  for d in "$top/lib64" "$top/targets/x86_64-linux/lib" "$top/lib"; do
    if ls "$d"/libcublas.so* >/dev/null 2>&1; then lib_flags "$d"; break; fi
  done
  [ -n "$cublas_ldflags" ] || cublas_ldflags="-lcublas"
else
  dirs=""
  for py in python3 python; do
    command -v "$py" >/dev/null 2>&1 || continue
    dirs="$dirs $("$py" -c 'import site,sys; print(" ".join(site.getsitepackages()+[site.getusersitepackages()]+sys.path))' 2>/dev/null)"
  done
  for sp in $dirs; do
    for sub in nvidia/cu13 nvidia/cublas nvidia/cu12; do
      if [ -f "$sp/$sub/include/cublas_v2.h" ] && ls "$sp/$sub/lib"/libcublas.so* >/dev/null 2>&1; then
        cublas_cflags="-I$sp/$sub/include"
        lib_flags "$sp/$sub/lib"
        break 2
      fi
    done
  done
  if [ -z "$cublas_cflags" ]; then
    hdr="$(find /usr /opt -name cublas_v2.h -not -path '*/proc/*' 2>/dev/null | head -1)"
    if [ -n "$hdr" ]; then
      lib="$(find /usr /opt -name 'libcublas.so*' 2>/dev/null | head -1)"
      if [ -n "$lib" ]; then
        cublas_cflags="-I$(dirname "$hdr")"
        lib_flags "$(dirname "$lib")"
      fi
    fi
  fi
fi
if [ -n "$cublas_ldflags" ]; then
  cublas=1
  say "cuBLAS: ${cublas_cflags:-toolkit headers} ${cublas_ldflags}"
else
  cublas=0
  say "cuBLAS not found: timings without the cuBLAS baselines"
fi

say "building the harness for sm_${archs// /, sm_}"
t0=$(date +%s)
rm -f "$build/harness" "$build/harness.o"  # cuBLAS flags may differ from a previous build
if ! make -C "$here" -j"$(nproc 2>/dev/null || echo 4)" BUILD="$build" ARCHS="$archs" \
  CUBLAS="$cublas" CUBLAS_CFLAGS="$cublas_cflags" CUBLAS_LDFLAGS="$cublas_ldflags" "$build/harness" >>"$log" 2>&1; then
  tail -40 "$log"
  say "BUILD FAILED"
  exit 1
fi
say "built in $(($(date +%s) - t0))s"
[ -n "$cublas_libdir" ] && export LD_LIBRARY_PATH="$cublas_libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

status=0
seed="${BNN_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1 || true)"
if [ "${BNN_SANITIZE:-1}" != 0 ] && [ -n "$sanitizer" ]; then
  # Out-of-bounds accesses and shared-memory races need not show in results; a representative subset
  # (--quick) runs under each tool. A time-out is reported and not counted.
  for tool in memcheck:75 racecheck:50; do
    name="${tool%%:*}"
    limit="${tool##*:}"
    say "$name of the checks (--quick, no timings), limit ${limit}s"
    timeout "$limit" "$sanitizer" --tool "$name" --error-exitcode 3 "$build/harness" --require-gpu --quick --no-bench --seed="$seed" \
      >"$build/$name.log" 2>&1
    rc=$?
    grep -E "^(FAIL) |passed, |ERROR SUMMARY|RACECHECK SUMMARY|Invalid|hazard|out of bounds" "$build/$name.log" | head -30 | tee -a "$log"
    case $rc in
      0) say "$name: clean" ;;
      124) say "$name: timed out (not counted)" ;;
      *) say "$name: FAILED (exit $rc; $build/$name.log)"; status=1 ;;
    esac
  done
else
  say "compute-sanitizer runs skipped (${sanitizer:-compute-sanitizer not found})"
fi

say "checks and timings (seed $seed)"
timeout 150 "$build/harness" --require-gpu --seed="$seed" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || status=1
# Nothing printed after the harness: its table stays last. Status: harness and memcheck verdicts.
exit $status
