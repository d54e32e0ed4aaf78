// AVX2 variant (AVX2 + POPCNT), for x86-64 CPUs without AVX-512 VPOPCNTDQ. Popcount of
// 256-bit vectors with the nibble lookup table (VPSHUFB) and VPSADBW, after Mula,
// Kurz and Lemire, "Faster population counts using AVX2 instructions" (2018).
// Register tile: 2 A rows x 3 B rows; ragged word tails use scalar POPCNT.
#include <immintrin.h>

#include "kernels.h"

namespace bnn::xnor {

namespace {

// Local helpers instead of shared inline functions: see the note in kernels.h.
inline size_t words_for(size_t k) { return (k + 63) / 64; }
inline size_t min_of(size_t a, size_t b) { return a < b ? a : b; }
inline size_t max_of(size_t a, size_t b) { return a > b ? a : b; }

// --- packing -------------------------------------------------------------------------

inline uint64_t sign_bits64(const float* s, size_t len) {
  const __m256 zero = _mm256_setzero_ps();
  uint64_t word = 0;
  size_t q = 0;
  for (; q * 8 + 8 <= len; ++q)
    word |= uint64_t(unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + q * 8), zero, _CMP_LT_OQ)))) << (8 * q);
  for (size_t j = q * 8; j < len; ++j) word |= uint64_t{s[j] < 0.0f} << j;
  return word;
}

void pack_rows(const float* src, size_t rows, size_t k, size_t ld, uint64_t* dst) {
  const size_t kw = words_for(k);
  for (size_t r = 0; r < rows; ++r)
    for (size_t w = 0; w < kw; ++w) dst[r * kw + w] = sign_bits64(src + r * ld + w * 64, min_of(64, k - w * 64));
}

// Rows stream by while the words of a block of columns stay in L1; the inner loop over
// columns is compare/shift/or and vectorises.
void pack_cols(const float* src, size_t k, size_t n, size_t c0, size_t c1, uint64_t* dst) {
  const size_t kw = words_for(k);
  constexpr size_t kBlock = 256;
  alignas(32) uint64_t words[kBlock];
  for (size_t cb = c0; cb < c1; cb += kBlock) {
    const size_t cols = min_of(kBlock, c1 - cb);
    for (size_t w = 0; w < kw; ++w) {
      for (size_t c = 0; c < kBlock; ++c) words[c] = 0;
      const size_t len = min_of(64, k - w * 64);
      for (size_t j = 0; j < len; ++j) {
        const float* row = src + (w * 64 + j) * n + cb;
        for (size_t c = 0; c < cols; ++c) words[c] |= uint64_t{row[c] < 0.0f} << j;
      }
      for (size_t c = 0; c < cols; ++c) dst[(cb + c) * kw + w] = words[c];
    }
  }
}

// --- GEMM ----------------------------------------------------------------------------

struct Popcount256 {
  __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
                                 3, 3, 4);
  __m256i low = _mm256_set1_epi8(0x0f);
  // Per-64-bit-lane popcounts of x.
  __m256i operator()(__m256i x) const {
    const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
    const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
    return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
  }
};

inline int64_t hsum(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

template <size_t MR, size_t NR>
void tile(const uint64_t* a, const uint64_t* b, float* c, size_t n, size_t kw, int64_t k, const Popcount256& pc) {
  __m256i acc[MR][NR];
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  size_t w = 0;
  for (; w + 4 <= kw; w += 4) {
    __m256i av[MR];
    for (size_t i = 0; i < MR; ++i) av[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * kw + w));
    for (size_t j = 0; j < NR; ++j) {
      const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j * kw + w));
      for (size_t i = 0; i < MR; ++i) acc[i][j] = _mm256_add_epi64(acc[i][j], pc(_mm256_xor_si256(av[i], bv)));
    }
  }
  int64_t tail[MR][NR] = {};
  for (; w < kw; ++w)
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < NR; ++j) tail[i][j] += _mm_popcnt_u64(a[i * kw + w] ^ b[j * kw + w]);
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j) c[i * n + j] = static_cast<float>(k - 2 * (hsum(acc[i][j]) + tail[i][j]));
}

template <size_t MR>
void row_block(const uint64_t* a, const uint64_t* b, float* c, size_t n, size_t j0, size_t j1, size_t kw, int64_t k,
               const Popcount256& pc) {
  size_t j = j0;
  for (; j + 3 <= j1; j += 3) tile<MR, 3>(a, b + j * kw, c + j, n, kw, k, pc);
  for (; j < j1; ++j) tile<MR, 1>(a, b + j * kw, c + j, n, kw, k, pc);
}

void gemm(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool) {
  const size_t kw = words_for(k);
  const int64_t kk = static_cast<int64_t>(k);
  constexpr size_t kRowsPerTask = 8;
  pool.parallel_for((m + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
    const Popcount256 pc;
    const size_t i0 = t * kRowsPerTask, i1 = min_of(m, i0 + kRowsPerTask);
    // B in blocks of about 64 KiB so a block is reused from cache by every row pair.
    const size_t jb = max_of(3, (size_t{1} << 13) / kw);
    for (size_t j0 = 0; j0 < n; j0 += jb) {
      const size_t j1 = min_of(n, j0 + jb);
      size_t i = i0;
      for (; i + 2 <= i1; i += 2) row_block<2>(a + i * kw, b, c + i * n, n, j0, j1, kw, kk, pc);
      for (; i < i1; ++i) row_block<1>(a + i * kw, b, c + i * n, n, j0, j1, kw, kk, pc);
    }
  });
}

}  // namespace

const Kernels kAvx2Kernels = {"avx2", pack_rows, pack_cols, gemm};

}  // namespace bnn::xnor
