// Standalone test-and-bench program for the CUDA kernels (no Node).
//
//   harness [--cpu-only] [--no-bench] [--quick] [--require-gpu] [--sizes=4096,8192] [--reps=N] [--seed=N]
//
// --quick: a representative subset of the GPU checks (for runs under compute-sanitizer).
// --require-gpu: no usable device is a failure (exit 1) instead of a CPU-only pass.
//
// Always runs the CPU-side self-checks. With a CUDA device (and without --cpu-only) it also checks
// every kernel bit-exactly against the scalar references, then times the XNOR GEMMs against cuBLAS
// and prints a table last. Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/bnn_cuda.h"
#include "bench.h"
#include "cpu_checks.h"
#include "gpu_checks.h"

namespace {

struct Options {
  bool cpu_only = false;
  bool bench = true;
  bool quick = false;
  bool require_gpu = false;
  std::vector<int> sizes{4096, 8192};
  int reps = 0;  // 0: 25 below 8192, 15 from 8192
  uint64_t seed = 0;
  bool seeded = false;
};

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cpu-only") {
      o->cpu_only = true;
    } else if (a == "--no-bench") {
      o->bench = false;
    } else if (a == "--require-gpu") {
      o->require_gpu = true;
    } else if (a == "--quick") {
      o->quick = true;
    } else if (a.rfind("--sizes=", 0) == 0) {
      o->sizes.clear();
      const char* p = a.c_str() + 8;
      while (*p) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 1 || v > 65536) return false;
        o->sizes.push_back(int(v));
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return false;
      }
    } else if (a.rfind("--reps=", 0) == 0) {
      o->reps = std::atoi(a.c_str() + 7);
      if (o->reps < 1) return false;
    } else if (a.rfind("--seed=", 0) == 0) {
      o->seed = std::strtoull(a.c_str() + 7, nullptr, 10);
      o->seeded = true;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bnn::cuda_test;
  Options opt;
  if (!parse(argc, argv, &opt)) {
    std::fprintf(stderr, "usage: %s [--cpu-only] [--no-bench] [--quick] [--require-gpu] [--sizes=4096,8192] [--reps=N] [--seed=N]\n", argv[0]);
    return 2;
  }
  if (!opt.seeded) opt.seed = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
  std::printf("bnn CUDA harness: seed %llu (rerun with --seed=%llu)\n", (unsigned long long)opt.seed,
              (unsigned long long)opt.seed);
  std::mt19937_64 rng(opt.seed);
  Checks ck;
  run_cpu_checks(ck, rng);

  int count = 0;
  bnn_cuda_device_count(&count);
  bnn_cuda_device_info info{};
  if (!opt.cpu_only && count > 0) bnn_cuda_device_query(0, &info);
  if (opt.cpu_only || count == 0 || !info.available) {
    if (opt.cpu_only)
      std::printf("--cpu-only: ran CPU-side checks only\n");
    else if (count == 0)
      std::printf("no CUDA device: ran CPU-side checks only (%s)\n", bnn_cuda_last_error());
    else
      std::printf("no usable CUDA device (%s): ran CPU-side checks only\n", info.reason);
    if (opt.require_gpu && !opt.cpu_only) ck.expect(false, "--require-gpu: no usable CUDA device");
    std::printf("%d passed, %d failed\n", ck.passed(), ck.failed());
    return ck.failed() ? 1 : 0;
  }

  std::printf("device 0: %s, compute capability %d.%d, %d SMs, %.1f GiB, b1 mma kernel: %s\n", info.name, info.cc_major,
              info.cc_minor, info.sm_count, double(info.total_mem_bytes) / (1024.0 * 1024 * 1024),
              info.mma_b1 ? "yes" : "no");
  int resolved = -1;
  const int rs = bnn_cuda_gemm_resolve(BNN_CUDA_GEMM_AUTO, &resolved);
  std::printf("auto GEMM variant on this device: %s\n", rs == BNN_CUDA_OK ? variant_name(resolved) : bnn_cuda_last_error());
  // AUTO may pick popc on an mma device when popc measured faster (stderr says why); the explicit
  // mma checks below are what prove the tensor-core kernel right.
  ck.expect(rs == BNN_CUDA_OK, "auto variant did not resolve: %s", bnn_cuda_last_error());

  run_gpu_checks(ck, rng, info.mma_b1 != 0, opt.quick);

  std::vector<BenchRow> rows;
  if (opt.bench) {
    for (int size : opt.sizes) {
      const int reps = opt.reps ? opt.reps : (size >= 8192 ? 15 : 25);
      run_bench_size(ck, size, reps, info.mma_b1 != 0, rows);
    }
  }
  std::printf("\n%d passed, %d failed\n", ck.passed(), ck.failed());
  if (opt.bench) print_table(rows, opt.sizes, info.name);
  return ck.failed() ? 1 : 0;
}
