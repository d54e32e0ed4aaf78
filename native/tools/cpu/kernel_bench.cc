// XNOR GEMM vs OpenBLAS sgemm at the reference shapes, 1 thread and all threads, and the
// 8-bit x binary bitplane_gemm vs sgemm at a first-layer shape.
// Weights are packed once (as in training, once per step); activation packing is timed
// separately. Each time is the median of several runs after a warm-up.
// Run with the OpenBLAS overrides unset: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../check_util.h"
#include "common/thread_pool.h"
#include "fp32/fp32.h"
#include "xnor_gemm/xnor_gemm.h"

using namespace bnn;

namespace {

template <class F>
double median_seconds(F&& f, double min_total_s = 0.3, int min_reps = 5) {
  f();  // warm-up
  std::vector<double> t;
  double total = 0;
  while (t.size() < size_t(min_reps) || total < min_total_s) {
    const double t0 = tools::now_s();
    f();
    t.push_back(tools::now_s() - t0);
    total += t.back();
    if (t.size() >= 200) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Runs f(threads) with the pool and OpenBLAS at 1 thread, then at all hardware threads.
template <class F>
void at_each_thread_count(F&& f) {
  std::vector<size_t> counts = {1};
  if (const size_t hw = ThreadPool::default_threads(); hw > 1) counts.push_back(hw);
  for (size_t threads : counts) {
    ThreadPool::global().set_threads(threads);
    fp32::set_blas_threads(threads);
    f(threads);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // `kernel_bench bitplane` runs only the bitplane_gemm comparison.
  const bool only_bitplane = argc > 1 && std::string(argv[1]) == "bitplane";
  // OpenBLAS reads this when it loads (before main); its default lets idle threads spin
  // ~2^28 cycles after each sgemm, stealing the cores the XNOR pool uses next. The addon's
  // loader sets the same value (src/native/addon.ts).
  if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: carry on with the default
  }
  for (const char* var : {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"})
    if (std::getenv(var))
      std::fprintf(stderr, "kernel_bench: warning: %s is set; OpenBLAS may run a slower core (unset it)\n", var);
  std::printf("kernel_bench: xnor kernel %s; openblas %s\n", xnor::active_kernels().name, fp32::blas_config().c_str());
  std::printf("%5s %5s %5s %3s | %9s %8s | %9s %9s %8s | %6s\n", "M", "K", "N", "thr", "sgemm ms", "GFLOP/s",
              "xnor ms", "GOP/s eq", "pack ms", "ratio");
  struct Shape {
    size_t m, k, n;
  };
  std::mt19937_64 rng(7);
  for (Shape s : {Shape{256, 4096, 4096}, Shape{256, 2048, 2048}, Shape{1024, 4096, 4096}}) {
    if (only_bitplane) break;
    const auto a = tools::random_floats(s.m * s.k, rng), w = tools::random_floats(s.k * s.n, rng);
    const size_t kw = (s.k + 63) / 64;
    std::vector<uint64_t> pa(s.m * kw), pw(s.n * kw);
    std::vector<float> c(s.m * s.n);
    xnor::pack_cols(w.data(), s.k, s.n, pw.data());
    at_each_thread_count([&](size_t threads) {
      const double t_sgemm = median_seconds(
          [&] { fp32::sgemm(false, false, s.m, s.n, s.k, 1.0f, a.data(), w.data(), 0.0f, c.data()); });
      const double t_pack = median_seconds([&] { xnor::pack_rows(a.data(), s.m, s.k, pa.data()); });
      const double t_xnor = median_seconds([&] { xnor::gemm(pa.data(), pw.data(), c.data(), s.m, s.n, s.k); });
      const double flops = 2.0 * s.m * s.n * s.k;
      std::printf("%5zu %5zu %5zu %3zu | %9.3f %8.1f | %9.3f %9.1f %8.3f | %5.1fx\n", s.m, s.k, s.n, threads,
                  t_sgemm * 1e3, flops / t_sgemm * 1e-9, t_xnor * 1e3, flops / t_xnor * 1e-9, t_pack * 1e3,
                  t_sgemm / t_xnor);
    });
  }

  // First layer of a packed model: 8-bit pixels times +-1 weights. sgemm on the pixels as
  // floats and the weights as +-1 floats vs bitplane_gemm on the bytes and packed weights
  // (bit planes packed inside the call, so its time includes them).
  std::printf("\nbitplane_gemm (kernel %s) vs sgemm of float(raw) x (+-1)\n", xnor::active_kernels().name);
  std::printf("%5s %5s %5s %3s | %9s %8s | %11s %9s | %6s\n", "M", "K", "N", "thr", "sgemm ms", "GFLOP/s",
              "bitplane ms", "GOP/s eq", "ratio");
  for (Shape s : {Shape{256, 784, 2048}}) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<uint8_t> raw(s.m * s.k);
    for (auto& x : raw) x = static_cast<uint8_t>(byte(rng));
    std::vector<float> rawf(raw.begin(), raw.end());
    auto w = tools::random_floats(s.k * s.n, rng);
    for (auto& x : w) x = x < 0.0f ? -1.0f : 1.0f;
    std::vector<uint64_t> pw(s.n * ((s.k + 63) / 64));
    xnor::pack_cols(w.data(), s.k, s.n, pw.data());
    std::vector<float> c(s.m * s.n), c2(s.m * s.n);
    at_each_thread_count([&](size_t threads) {
      const double t_sgemm = median_seconds(
          [&] { fp32::sgemm(false, false, s.m, s.n, s.k, 1.0f, rawf.data(), w.data(), 0.0f, c.data()); });
      const double t_bp = median_seconds([&] { xnor::bitplane_gemm(raw.data(), pw.data(), c2.data(), s.m, s.n, s.k); });
      if (c != c2) std::printf("bitplane_gemm differs from sgemm!\n");
      const double flops = 2.0 * s.m * s.n * s.k;
      std::printf("%5zu %5zu %5zu %3zu | %9.3f %8.1f | %11.3f %9.1f | %5.1fx\n", s.m, s.k, s.n, threads,
                  t_sgemm * 1e3, flops / t_sgemm * 1e-9, t_bp * 1e3, flops / t_bp * 1e-9, t_sgemm / t_bp);
    });
  }
  return 0;
}
