// Drivers: contract checks, then the work split over the global pool.
#include "xnor_gemm.h"

#include <algorithm>

#include "../common/check.h"
#include "reference.h"

namespace bnn::xnor {

namespace {
// Rows or columns per packing task: enough work to outweigh a task hand-off.
size_t pack_chunk(size_t k) { return std::max<size_t>(8, (size_t{1} << 16) / std::max<size_t>(k, 1)); }
}  // namespace

void pack_rows(const float* src, size_t rows, size_t k, uint64_t* dst, const Kernels& kern) {
  BNN_REQUIRE(k > 0, "k must be positive");
  BNN_REQUIRE(rows == 0 || (src && dst), "null buffer");
  const size_t kw = ref::packed_words(k);
  const size_t chunk = pack_chunk(k);
  const size_t tasks = (rows + chunk - 1) / chunk;
  ThreadPool::global().parallel_for(tasks, [&](size_t t) {
    const size_t r0 = t * chunk, r1 = std::min(rows, r0 + chunk);
    kern.pack_rows(src + r0 * k, r1 - r0, k, k, dst + r0 * kw);
  });
}

void pack_cols(const float* src, size_t k, size_t n, uint64_t* dst, const Kernels& kern) {
  BNN_REQUIRE(k > 0, "k must be positive");
  BNN_REQUIRE(n == 0 || (src && dst), "null buffer");
  // Column tasks are multiples of 64 so SIMD kernels work on whole column groups.
  const size_t chunk = std::max<size_t>(64, (pack_chunk(k) + 63) / 64 * 64);
  const size_t tasks = (n + chunk - 1) / chunk;
  ThreadPool::global().parallel_for(tasks, [&](size_t t) {
    const size_t c0 = t * chunk, c1 = std::min(n, c0 + chunk);
    kern.pack_cols(src, k, n, c0, c1, dst);
  });
}

void gemm(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k, const Kernels& kern) {
  BNN_REQUIRE(k > 0, "k must be positive");
  BNN_REQUIRE(k < (size_t{1} << 24), "k must be below 2^24 so every dot product is exact in float");
  if (m == 0 || n == 0) return;
  BNN_REQUIRE(a && b && c, "null buffer");
  kern.gemm(a, b, c, m, n, k, ThreadPool::global());
}

void bitplane_gemm(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k,
                   const Kernels& kern) {
  BNN_REQUIRE(k > 0, "k must be positive");
  BNN_REQUIRE(k <= ref::kBitplaneMaxK, "k must be at most 65793 so every sum (|sum| <= 255 k) is exact in float");
  if (m == 0 || n == 0) return;
  BNN_REQUIRE(raw && b && c, "null buffer");
  kern.bitplane_gemm(raw, b, c, m, n, k, ThreadPool::global());
}

}  // namespace bnn::xnor
