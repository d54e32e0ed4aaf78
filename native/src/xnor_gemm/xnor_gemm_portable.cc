// Portable variant: plain C++ for any CPU (x86-64 baseline has no POPCNT instruction,
// so popcount is SWAR). Register tile: 2 A rows x 4 B rows share each loaded word.
#include <algorithm>
#include <cstring>

#include "../common/scratch.h"
#include "kernels.h"
#include "reference.h"

namespace bnn::xnor {

namespace {

inline uint64_t popcount_swar(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return (x * 0x0101010101010101ULL) >> 56;
}

void pack_rows(const float* src, size_t rows, size_t k, size_t ld, uint64_t* dst) {
  const size_t kw = ref::packed_words(k);
  for (size_t r = 0; r < rows; ++r) {
    const float* s = src + r * ld;
    uint64_t* d = dst + r * kw;
    for (size_t w = 0; w < kw; ++w) {
      const size_t len = std::min<size_t>(64, k - w * 64);
      uint64_t word = 0;
      for (size_t j = 0; j < len; ++j) word |= uint64_t{s[w * 64 + j] < 0.0f} << j;
      d[w] = word;
    }
  }
}

void pack_cols(const float* src, size_t k, size_t n, size_t c0, size_t c1, uint64_t* dst) {
  const size_t kw = ref::packed_words(k);
  constexpr size_t kBlock = 256;  // columns whose words stay in L1 while rows stream by
  uint64_t words[kBlock];
  for (size_t cb = c0; cb < c1; cb += kBlock) {
    const size_t cols = std::min(kBlock, c1 - cb);
    for (size_t w = 0; w < kw; ++w) {
      std::memset(words, 0, sizeof(words));
      const size_t len = std::min<size_t>(64, k - w * 64);
      for (size_t j = 0; j < len; ++j) {
        const float* row = src + (w * 64 + j) * n + cb;
        for (size_t c = 0; c < cols; ++c) words[c] |= uint64_t{row[c] < 0.0f} << j;
      }
      for (size_t c = 0; c < cols; ++c) dst[(cb + c) * kw + w] = words[c];
    }
  }
}

template <size_t MR, size_t NR>
void tile(const uint64_t* a, const uint64_t* b, float* c, size_t n, size_t kw, size_t k) {
  uint64_t acc[MR][NR] = {};
  for (size_t w = 0; w < kw; ++w) {
    uint64_t av[MR], bv[NR];
    for (size_t i = 0; i < MR; ++i) av[i] = a[i * kw + w];
    for (size_t j = 0; j < NR; ++j) bv[j] = b[j * kw + w];
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < NR; ++j) acc[i][j] += popcount_swar(av[i] ^ bv[j]);
  }
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j)
      c[i * n + j] = static_cast<float>(static_cast<int64_t>(k) - 2 * static_cast<int64_t>(acc[i][j]));
}

// Columns [j0, j1) of MR rows.
template <size_t MR>
void row_block(const uint64_t* a, const uint64_t* b, float* c, size_t n, size_t j0, size_t j1, size_t kw, size_t k) {
  size_t j = j0;
  for (; j + 4 <= j1; j += 4) tile<MR, 4>(a, b + j * kw, c + j, n, kw, k);
  for (; j < j1; ++j) tile<MR, 1>(a, b + j * kw, c + j, n, kw, k);
}

void gemm(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool) {
  const size_t kw = ref::packed_words(k);
  constexpr size_t kRowsPerTask = 8;
  pool.parallel_for((m + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
    const size_t i0 = t * kRowsPerTask, i1 = std::min(m, i0 + kRowsPerTask);
    // B in blocks of about 64 KiB so a block is reused from cache by every row pair.
    const size_t jb = std::max<size_t>(4, (size_t{1} << 13) / kw);
    for (size_t j0 = 0; j0 < n; j0 += jb) {
      const size_t j1 = std::min(n, j0 + jb);
      size_t i = i0;
      for (; i + 2 <= i1; i += 2) row_block<2>(a + i * kw, b, c + i * n, n, j0, j1, kw, k);
      for (; i < i1; ++i) row_block<1>(a + i * kw, b, c + i * n, n, j0, j1, kw, k);
    }
  });
}

// --- 8-bit x binary GEMM by bit planes -----------------------------------------------
// Planes rp[i][b][w] (plane b of row i packed like a row); C[i][j] = rowsum(i) -
// 2 sum_b 2^b popcount(P_b[i] & B[j]). Register tile: 2 rows x 4 columns share each word.

constexpr size_t kPlanes = 8;
struct PlanesTag {};

void pack_planes(const uint8_t* raw, size_t k, size_t r0, size_t r1, uint64_t* rp, int64_t* sums) {
  const size_t kw = ref::packed_words(k);
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* src = raw + r * k;
    uint64_t* dst = rp + r * kPlanes * kw;
    int64_t sum = 0;
    for (size_t w = 0; w < kw; ++w) {
      const size_t len = std::min<size_t>(64, k - w * 64);
      uint64_t words[kPlanes] = {};
      for (size_t j = 0; j < len; ++j) {
        const unsigned v = src[w * 64 + j];
        sum += v;
        for (size_t b = 0; b < kPlanes; ++b) words[b] |= uint64_t{(v >> b) & 1u} << j;
      }
      for (size_t b = 0; b < kPlanes; ++b) dst[b * kw + w] = words[b];
    }
    sums[r] = sum;
  }
}

template <size_t MR, size_t NR>
void bp_tile(const uint64_t* rp, const int64_t* sums, const uint64_t* b, float* c, size_t n, size_t kw) {
  uint64_t acc[MR][NR] = {};
  for (size_t w = 0; w < kw; ++w) {
    uint64_t bv[NR];
    for (size_t j = 0; j < NR; ++j) bv[j] = b[j * kw + w];
    for (size_t p = 0; p < kPlanes; ++p)
      for (size_t i = 0; i < MR; ++i) {
        const uint64_t av = rp[(i * kPlanes + p) * kw + w];
        for (size_t j = 0; j < NR; ++j) acc[i][j] += popcount_swar(av & bv[j]) << p;
      }
  }
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j)
      c[i * n + j] = static_cast<float>(sums[i] - 2 * static_cast<int64_t>(acc[i][j]));
}

template <size_t MR>
void bp_row_block(const uint64_t* rp, const int64_t* sums, const uint64_t* b, float* c, size_t n, size_t j0,
                  size_t j1, size_t kw) {
  size_t j = j0;
  for (; j + 4 <= j1; j += 4) bp_tile<MR, 4>(rp, sums, b + j * kw, c + j, n, kw);
  for (; j < j1; ++j) bp_tile<MR, 1>(rp, sums, b + j * kw, c + j, n, kw);
}

void bitplane_gemm(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool) {
  const size_t kw = ref::packed_words(k);
  const size_t row_words = kPlanes * kw;
  uint64_t* rp = scratch_buffer<uint64_t, PlanesTag>(m * row_words + m);
  int64_t* sums = reinterpret_cast<int64_t*>(rp + m * row_words);
  constexpr size_t kRowsPerTask = 8;
  const size_t tasks = (m + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](size_t t) {
    pack_planes(raw, k, t * kRowsPerTask, std::min(m, (t + 1) * kRowsPerTask), rp, sums);
  });
  pool.parallel_for(tasks, [&](size_t t) {
    const size_t i0 = t * kRowsPerTask, i1 = std::min(m, i0 + kRowsPerTask);
    // B in blocks of about 64 KiB so a block is reused from cache by every row pair.
    const size_t jb = std::max<size_t>(4, (size_t{1} << 13) / kw);
    for (size_t j0 = 0; j0 < n; j0 += jb) {
      const size_t j1 = std::min(n, j0 + jb);
      size_t i = i0;
      for (; i + 2 <= i1; i += 2) bp_row_block<2>(rp + i * row_words, sums + i, b, c + i * n, n, j0, j1, kw);
      for (; i < i1; ++i) bp_row_block<1>(rp + i * row_words, sums + i, b, c + i * n, n, j0, j1, kw);
    }
  });
}

}  // namespace

const Kernels kPortableKernels = {"portable", pack_rows, pack_cols, gemm, bitplane_gemm};

}  // namespace bnn::xnor
