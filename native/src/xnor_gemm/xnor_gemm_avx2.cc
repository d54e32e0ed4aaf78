// AVX2 variant (AVX2 + POPCNT), for x86-64 CPUs without AVX-512 VPOPCNTDQ. Popcount of
// 256-bit vectors with the nibble lookup table (VPSHUFB) and VPSADBW, after Mula,
// Kurz and Lemire, "Faster population counts using AVX2 instructions" (2018).
// Register tile: 2 A rows x 3 B rows; ragged word tails use scalar POPCNT. The 8-bit x
// binary GEMM by bit planes (bitplane_gemm) is at the end.
#include <immintrin.h>

#include <cstdlib>
#include <memory>
#include <new>

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
  // Per-byte popcounts of x (0..8).
  __m256i bytes(__m256i x) const {
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, low)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
  }
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

// --- 8-bit x binary GEMM by bit planes -----------------------------------------------
// Planes rp[i][w][b] (word w of the 8 planes of row i = two ymm: planes 0-3, 4-7), so
// C[i][j] = rowsum(i) - 2 sum_b 2^b popcount(P_b[i] & B[j]). A B word is broadcast and
// and-ed with both halves; nibble-LUT byte counts (<= 8 per word) accumulate in bytes for
// up to 31 words, then VPSADBW, the plane weights (VPSLLVQ) and a horizontal sum.
// Register tile: 1 row x 4 columns (8 byte accumulators).

constexpr size_t kBpPlanes = 8;
constexpr size_t kBpCols = 4;
constexpr size_t kByteRun = 31;  // 31 * 8 = 248 fits a byte

struct AlignedFree {
  void operator()(uint64_t* p) const { std::free(p); }
};

// Per-calling-thread scratch for the planes (grows, never shrinks).
uint64_t* plane_scratch(size_t words) {
  thread_local std::unique_ptr<uint64_t, AlignedFree> buf;
  thread_local size_t cap = 0;
  if (words > cap) {
    const size_t bytes = (words * sizeof(uint64_t) + 63) / 64 * 64;
    buf.reset(static_cast<uint64_t*>(std::aligned_alloc(64, bytes)));
    if (!buf) throw std::bad_alloc();
    cap = words;
  }
  return buf.get();
}

// Out of line: inlined into the pool's task lambda, its AVX code would sit in
// bnn::ThreadPool::invoke<...>, outside this file's namespace (src/native/isa.test.ts).
__attribute__((noinline))
void pack_planes(const uint8_t* raw, size_t k, size_t r0, size_t r1, uint64_t* rp, int64_t* sums) {
  const size_t kw = words_for(k);
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* src = raw + r * k;
    uint64_t* dst = rp + r * kw * kBpPlanes;
    int64_t sum = 0;
    for (size_t w = 0; w < kw; ++w) {
      const size_t len = min_of(64, k - w * 64);
      alignas(32) uint8_t bytes[64] = {};
      for (size_t j = 0; j < len; ++j) bytes[j] = src[w * 64 + j];
      __m256i x[2] = {_mm256_load_si256(reinterpret_cast<const __m256i*>(bytes)),
                      _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes + 32))};
      const __m256i s = _mm256_add_epi64(_mm256_sad_epu8(x[0], _mm256_setzero_si256()),
                                         _mm256_sad_epu8(x[1], _mm256_setzero_si256()));
      sum += hsum(s);
      // Plane 7 first: VPMOVMSKB takes each byte's top bit, then shift the next bit up.
      for (size_t b = kBpPlanes; b-- > 0;) {
        const uint64_t lo = unsigned(_mm256_movemask_epi8(x[0])), hi = unsigned(_mm256_movemask_epi8(x[1]));
        dst[w * kBpPlanes + b] = lo | (hi << 32);
        x[0] = _mm256_add_epi8(x[0], x[0]);
        x[1] = _mm256_add_epi8(x[1], x[1]);
      }
    }
    sums[r] = sum;
  }
}

template <size_t NR>
void bp_tile(const uint64_t* rp, int64_t sum, const uint64_t* b, float* c, size_t kw, const Popcount256& pc) {
  const __m256i shift_lo = _mm256_setr_epi64x(0, 1, 2, 3), shift_hi = _mm256_setr_epi64x(4, 5, 6, 7);
  __m256i total = _mm256_setzero_si256();
  __m256i totals[NR];
  for (size_t j = 0; j < NR; ++j) totals[j] = total;
  for (size_t w0 = 0; w0 < kw; w0 += kByteRun) {
    const size_t w1 = min_of(kw, w0 + kByteRun);
    __m256i lo[NR], hi[NR];
    for (size_t j = 0; j < NR; ++j) lo[j] = hi[j] = _mm256_setzero_si256();
    for (size_t w = w0; w < w1; ++w) {
      const __m256i pl = _mm256_load_si256(reinterpret_cast<const __m256i*>(rp + w * kBpPlanes));
      const __m256i ph = _mm256_load_si256(reinterpret_cast<const __m256i*>(rp + w * kBpPlanes + 4));
      for (size_t j = 0; j < NR; ++j) {
        const __m256i bw = _mm256_set1_epi64x(static_cast<long long>(b[j * kw + w]));
        lo[j] = _mm256_add_epi8(lo[j], pc.bytes(_mm256_and_si256(pl, bw)));
        hi[j] = _mm256_add_epi8(hi[j], pc.bytes(_mm256_and_si256(ph, bw)));
      }
    }
    const __m256i zero = _mm256_setzero_si256();
    for (size_t j = 0; j < NR; ++j) {
      const __m256i counts_lo = _mm256_sllv_epi64(_mm256_sad_epu8(lo[j], zero), shift_lo);
      const __m256i counts_hi = _mm256_sllv_epi64(_mm256_sad_epu8(hi[j], zero), shift_hi);
      totals[j] = _mm256_add_epi64(totals[j], _mm256_add_epi64(counts_lo, counts_hi));
    }
  }
  for (size_t j = 0; j < NR; ++j) c[j] = static_cast<float>(sum - 2 * hsum(totals[j]));
}

void bitplane_gemm(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool) {
  const size_t kw = words_for(k);
  const size_t row_words = kw * kBpPlanes;
  uint64_t* rp = plane_scratch(m * row_words + m);
  int64_t* sums = reinterpret_cast<int64_t*>(rp + m * row_words);
  constexpr size_t kRowsPerTask = 8;
  const size_t tasks = (m + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](size_t t) {
    pack_planes(raw, k, t * kRowsPerTask, min_of(m, (t + 1) * kRowsPerTask), rp, sums);
  });
  pool.parallel_for(tasks, [&](size_t t) {
    const Popcount256 pc;
    const size_t i0 = t * kRowsPerTask, i1 = min_of(m, i0 + kRowsPerTask);
    // B in blocks of about 64 KiB, reused from cache by every row of the task.
    const size_t jb = max_of(kBpCols, (size_t{1} << 13) / kw / kBpCols * kBpCols);
    for (size_t j0 = 0; j0 < n; j0 += jb) {
      const size_t j1 = min_of(n, j0 + jb);
      for (size_t i = i0; i < i1; ++i) {
        size_t j = j0;
        for (; j + kBpCols <= j1; j += kBpCols)
          bp_tile<kBpCols>(rp + i * row_words, sums[i], b + j * kw, c + i * n + j, kw, pc);
        for (; j < j1; ++j) bp_tile<1>(rp + i * row_words, sums[i], b + j * kw, c + i * n + j, kw, pc);
      }
    }
  });
}

}  // namespace

const Kernels kAvx2Kernels = {"avx2", pack_rows, pack_cols, gemm, bitplane_gemm};

}  // namespace bnn::xnor
