// AVX-512 variant (F, BW, DQ, VL, VPOPCNTDQ). Only this file is compiled with AVX-512
// flags; select.cc calls into it only after CPUID confirmed those features.
//
// GEMM scheme ("broadcast" micro-kernel, no horizontal sums): A is repacked into panels
// of 8 rows, ap[panel][w][r] = A[8 * panel + r][w], so one zmm holds word w of 8 rows.
// A B word is broadcast to all lanes, xor-ed with P panels, and VPOPCNTQ counts land
// in lane r = row, accumulator b = column: a tile is (8P rows x 8 columns) with 8P
// accumulators in registers, and each loaded word feeds 8 or P products. At the end an
// 8x8 transpose per panel turns the accumulators into rows of C. The 8-bit x binary
// GEMM by bit planes (bitplane_gemm) reuses the scheme with lanes = bit planes (see below).
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

constexpr size_t kPanelRows = 8;
constexpr size_t kTileCols = 8;
constexpr size_t kMaxPanels = 3;  // panels per tile: 8 * 3 = 24 accumulators

// --- packing -------------------------------------------------------------------------

inline uint64_t sign_bits64(const float* s, size_t len) {
  const __m512 zero = _mm512_setzero_ps();
  if (len == 64) {
    const uint64_t m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s), zero, _CMP_LT_OQ);
    const uint64_t m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + 16), zero, _CMP_LT_OQ);
    const uint64_t m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + 32), zero, _CMP_LT_OQ);
    const uint64_t m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + 48), zero, _CMP_LT_OQ);
    return m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
  }
  uint64_t word = 0;
  for (size_t q = 0; q * 16 < len; ++q) {
    const size_t n = min_of(16, len - q * 16);
    const __mmask16 valid = static_cast<__mmask16>((1u << n) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(valid, s + q * 16);  // zero-filled lanes compare false
    word |= uint64_t{_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ)} << (16 * q);
  }
  return word;
}

void pack_rows(const float* src, size_t rows, size_t k, size_t ld, uint64_t* dst) {
  const size_t kw = words_for(k);
  for (size_t r = 0; r < rows; ++r)
    for (size_t w = 0; w < kw; ++w) dst[r * kw + w] = sign_bits64(src + r * ld + w * 64, min_of(64, k - w * 64));
}

// Columns in groups of 16: for each block of 64 rows, one compare per row gives a 16-bit
// mask (bit = column); the 64 masks sit in two zmm as 16-bit lanes, and VPTESTMW with a
// one-column selector gathers that column's 64 bits (a bit-matrix transpose).
void pack_cols(const float* src, size_t k, size_t n, size_t c0, size_t c1, uint64_t* dst) {
  const size_t kw = words_for(k);
  const __m512 zero = _mm512_setzero_ps();
  alignas(64) uint16_t masks[64];
  for (size_t w = 0; w < kw; ++w) {
    const size_t len = min_of(64, k - w * 64);
    for (size_t cg = c0; cg < c1; cg += 16) {
      const size_t cols = min_of(16, c1 - cg);
      const __mmask16 valid = static_cast<__mmask16>((1u << cols) - 1);
      for (size_t j = 0; j < 64; ++j) {
        if (j < len) {
          const __m512 x = _mm512_maskz_loadu_ps(valid, src + (w * 64 + j) * n + cg);
          masks[j] = _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ);
        } else {
          masks[j] = 0;
        }
      }
      const __m512i lo = _mm512_load_si512(masks), hi = _mm512_load_si512(masks + 32);
      for (size_t c = 0; c < cols; ++c) {
        const __m512i sel = _mm512_set1_epi16(static_cast<short>(1u << c));
        const uint64_t word = uint64_t{_mm512_test_epi16_mask(lo, sel)} | (uint64_t{_mm512_test_epi16_mask(hi, sel)} << 32);
        dst[(cg + c) * kw + w] = word;
      }
    }
  }
}

// --- GEMM ----------------------------------------------------------------------------

struct AlignedFree {
  void operator()(uint64_t* p) const { std::free(p); }
};

// Per-calling-thread scratch (grows, never shrinks); Slot 0 = the repacked A of the XNOR
// GEMM, 1 = the bit planes of bitplane_gemm.
template <int Slot>
uint64_t* scratch(size_t words) {
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

void repack_panel(const uint64_t* a, size_t m, size_t kw, size_t panel, uint64_t* ap) {
  uint64_t* out = ap + panel * kw * kPanelRows;
  for (size_t r = 0; r < kPanelRows; ++r) {
    const size_t row = panel * kPanelRows + r;
    if (row < m) {
      const uint64_t* in = a + row * kw;
      for (size_t w = 0; w < kw; ++w) out[w * kPanelRows + r] = in[w];
    } else {
      for (size_t w = 0; w < kw; ++w) out[w * kPanelRows + r] = 0;
    }
  }
}

// In-place transpose of an 8x8 matrix of 64-bit lanes (r[i] lane j <-> r[j] lane i).
inline void transpose8x8(__m512i r[8]) {
  __m512i a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm512_unpacklo_epi64(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi64(r[i], r[i + 1]);
  }
  // a[0] = (r0_0 r1_0 | r0_2 r1_2 | r0_4 r1_4 | r0_6 r1_6), a[1] the odd elements, etc.
  for (int h = 0; h < 8; h += 4) {
    for (int o = 0; o < 2; ++o) {
      b[h + 2 * o] = _mm512_shuffle_i64x2(a[h + o], a[h + o + 2], _MM_SHUFFLE(2, 0, 2, 0));
      b[h + 2 * o + 1] = _mm512_shuffle_i64x2(a[h + o], a[h + o + 2], _MM_SHUFFLE(3, 1, 3, 1));
    }
  }
  // b[0] = rows 0-3, elements 0,4; b[1] = rows 0-3, elements 2,6; b[2] = 1,5; b[3] = 3,7.
  static constexpr int elem_lo[4] = {0, 2, 1, 3};
  for (int q = 0; q < 4; ++q) {
    r[elem_lo[q]] = _mm512_shuffle_i64x2(b[q], b[q + 4], _MM_SHUFFLE(2, 0, 2, 0));
    r[elem_lo[q] + 4] = _mm512_shuffle_i64x2(b[q], b[q + 4], _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// One tile: P panels (8P rows) x 8 columns over the whole K.
template <size_t P>
void tile(const uint64_t* ap, size_t kw, const uint64_t* b, size_t cols, float* c, size_t ldc, size_t rows,
          int64_t k) {
  const uint64_t* br[kTileCols];
  for (size_t j = 0; j < kTileCols; ++j) br[j] = b + min_of(j, cols - 1) * kw;  // tail: repeat the last column
  __m512i acc[kTileCols][P];
#pragma GCC unroll 8
  for (size_t j = 0; j < kTileCols; ++j)
#pragma GCC unroll 3
    for (size_t p = 0; p < P; ++p) acc[j][p] = _mm512_setzero_si512();
  const size_t panel_stride = kw * kPanelRows;
  for (size_t w = 0; w < kw; ++w) {
    __m512i pa[P];
#pragma GCC unroll 3
    for (size_t p = 0; p < P; ++p) pa[p] = _mm512_load_si512(ap + p * panel_stride + w * kPanelRows);
#pragma GCC unroll 8
    for (size_t j = 0; j < kTileCols; ++j) {
      const __m512i bw = _mm512_set1_epi64(static_cast<long long>(br[j][w]));
#pragma GCC unroll 3
      for (size_t p = 0; p < P; ++p)
        acc[j][p] = _mm512_add_epi64(acc[j][p], _mm512_popcnt_epi64(_mm512_xor_si512(pa[p], bw)));
    }
  }
  const __m512i kv = _mm512_set1_epi64(k);
  const __mmask8 colmask = static_cast<__mmask8>((1u << cols) - 1);
  for (size_t p = 0; p < P; ++p) {
    __m512i r[8];
    for (size_t j = 0; j < 8; ++j) r[j] = acc[j][p];
    transpose8x8(r);
    const size_t prow = p * kPanelRows;
    for (size_t i = 0; i < kPanelRows && prow + i < rows; ++i) {
      const __m256 f = _mm512_cvtepi64_ps(_mm512_sub_epi64(kv, _mm512_slli_epi64(r[i], 1)));
      float* out = c + (prow + i) * ldc;
      if (cols == kTileCols) _mm256_storeu_ps(out, f);
      else _mm256_mask_storeu_ps(out, colmask, f);
    }
  }
}

void gemm(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool) {
  const size_t kw = words_for(k);
  const size_t panels = (m + kPanelRows - 1) / kPanelRows;
  uint64_t* ap = scratch<0>(panels * kw * kPanelRows);
  // The repack is a copy of A (small next to the product); split it only when it is large.
  const size_t repack_tasks = panels * kw >= (size_t{1} << 16) ? (panels + 3) / 4 : 1;
  pool.parallel_for(repack_tasks, [&](size_t t) {
    const size_t per = (panels + repack_tasks - 1) / repack_tasks;
    for (size_t p = t * per; p < min_of(panels, (t + 1) * per); ++p) repack_panel(a, m, kw, p, ap);
  });

  // A in blocks of panels that stay in L2 while a B tile (8 rows) stays in L1.
  const size_t panel_bytes = kw * kPanelRows * sizeof(uint64_t);
  const size_t block_panels = max_of(kMaxPanels, (size_t{384} << 10) / panel_bytes / kMaxPanels * kMaxPanels);
  const size_t m_blocks = (panels + block_panels - 1) / block_panels;
  const size_t col_tiles = (n + kTileCols - 1) / kTileCols;
  constexpr size_t kTilesPerTask = 8;
  const size_t col_chunks = (col_tiles + kTilesPerTask - 1) / kTilesPerTask;

  pool.parallel_for(m_blocks * col_chunks, [&](size_t t) {
    const size_t mb = t / col_chunks, cc = t % col_chunks;
    const size_t p0 = mb * block_panels, p1 = min_of(panels, p0 + block_panels);
    const size_t ct1 = min_of(col_tiles, (cc + 1) * kTilesPerTask);
    for (size_t ct = cc * kTilesPerTask; ct < ct1; ++ct) {
      const size_t j0 = ct * kTileCols, cols = min_of(kTileCols, n - j0);
      for (size_t p = p0; p < p1;) {
        const size_t np = min_of(kMaxPanels, p1 - p);
        const size_t row0 = p * kPanelRows, rows = m - row0;
        const uint64_t* apan = ap + p * kw * kPanelRows;
        float* cc0 = c + row0 * n + j0;
        const int64_t kk = static_cast<int64_t>(k);
        if (np == 3) tile<3>(apan, kw, b + j0 * kw, cols, cc0, n, rows, kk);
        else if (np == 2) tile<2>(apan, kw, b + j0 * kw, cols, cc0, n, rows, kk);
        else tile<1>(apan, kw, b + j0 * kw, cols, cc0, n, rows, kk);
        p += np;
      }
    }
  });
}

// --- 8-bit x binary GEMM by bit planes -----------------------------------------------
//
// raw is split into its 8 bit planes, laid out rp[i][w][b] = word w of plane b of row i,
// so one zmm holds word w of all 8 planes of a row (lane b = plane b). With B[j] the
// packed column j (bit 1 = -1):  C[i][j] = rowsum(i) - 2 sum_b 2^b popcount(P_b[i] & B[j]).
// Same broadcast scheme as the XNOR tile: a B word is broadcast, and-ed with R rows and
// counted with VPOPCNTQ into R x 8 accumulators whose lanes keep the planes apart; the
// weights 2^b (one VPSLLVQ) and the sum over lanes come once per output, at the end.

constexpr size_t kBpPlanes = 8;
constexpr size_t kBpRows = 3;  // rows per tile: 3 x 8 = 24 accumulators
constexpr size_t kBpCols = 8;

// Rows [r0, r1) of raw [m][k] into planes rp[i][w][b], plus each row's sum of raw values.
// Out of line: inlined into the pool's task lambda, its AVX code would sit in
// bnn::ThreadPool::invoke<...>, outside this file's namespace (src/native/isa.test.ts).
__attribute__((noinline))
void pack_planes(const uint8_t* raw, size_t k, size_t r0, size_t r1, uint64_t* rp, int64_t* sums) {
  const size_t kw = words_for(k);
  const __m512i zero = _mm512_setzero_si512();
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* src = raw + r * k;
    uint64_t* dst = rp + r * kw * kBpPlanes;
    __m512i sum = zero;
    for (size_t w = 0; w < kw; ++w) {
      const size_t len = min_of(64, k - w * 64);
      const __mmask64 valid = len == 64 ? ~__mmask64{0} : (__mmask64{1} << len) - 1;
      const __m512i x = _mm512_maskz_loadu_epi8(valid, src + w * 64);  // tail bytes 0: tail bits 0
      sum = _mm512_add_epi64(sum, _mm512_sad_epu8(x, zero));
      for (size_t b = 0; b < kBpPlanes; ++b)
        dst[w * kBpPlanes + b] = _mm512_test_epi8_mask(x, _mm512_set1_epi8(static_cast<char>(1u << b)));
    }
    sums[r] = _mm512_reduce_add_epi64(sum);
  }
}

// Lane j of the result = the sum of the 8 lanes of v[j].
inline __m512i lane_sums8(const __m512i v[8]) {
  __m512i a[4], h[2];
  // a[i], 128-bit block q: (v[2i] lanes 2q + 2q+1, v[2i+1] lanes 2q + 2q+1).
  for (int i = 0; i < 4; ++i)
    a[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi64(v[2 * i], v[2 * i + 1]));
  // h[g] blocks: (v[4g], v[4g+1]) over lanes 0-3, the same over lanes 4-7, then v[4g+2], v[4g+3].
  for (int g = 0; g < 2; ++g)
    h[g] = _mm512_add_epi64(_mm512_shuffle_i64x2(a[2 * g], a[2 * g + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i64x2(a[2 * g], a[2 * g + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_epi64(_mm512_shuffle_i64x2(h[0], h[1], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i64x2(h[0], h[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// One tile: R rows x 8 columns over the whole K. rp and sums point at the tile's first row.
template <size_t R>
void bp_tile(const uint64_t* rp, const int64_t* sums, size_t kw, const uint64_t* b, size_t cols, float* c,
             size_t ldc) {
  const uint64_t* br[kBpCols];
  for (size_t j = 0; j < kBpCols; ++j) br[j] = b + min_of(j, cols - 1) * kw;  // tail: repeat the last column
  __m512i acc[kBpCols][R];
#pragma GCC unroll 8
  for (size_t j = 0; j < kBpCols; ++j)
#pragma GCC unroll 3
    for (size_t r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_si512();
  const size_t row_stride = kw * kBpPlanes;
  for (size_t w = 0; w < kw; ++w) {
    __m512i pl[R];
#pragma GCC unroll 3
    for (size_t r = 0; r < R; ++r) pl[r] = _mm512_load_si512(rp + r * row_stride + w * kBpPlanes);
#pragma GCC unroll 8
    for (size_t j = 0; j < kBpCols; ++j) {
      const __m512i bw = _mm512_set1_epi64(static_cast<long long>(br[j][w]));
#pragma GCC unroll 3
      for (size_t r = 0; r < R; ++r)
        acc[j][r] = _mm512_add_epi64(acc[j][r], _mm512_popcnt_epi64(_mm512_and_si512(pl[r], bw)));
    }
  }
  const __m512i plane_shift = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const __mmask8 colmask = static_cast<__mmask8>((1u << cols) - 1);
#pragma GCC unroll 3
  for (size_t r = 0; r < R; ++r) {
    __m512i v[kBpCols];
#pragma GCC unroll 8
    for (size_t j = 0; j < kBpCols; ++j) v[j] = _mm512_sllv_epi64(acc[j][r], plane_shift);
    const __m512i neg = lane_sums8(v);  // lane j: sum_b 2^b popcount(P_b & B[j])
    const __m256 f = _mm512_cvtepi64_ps(_mm512_sub_epi64(_mm512_set1_epi64(sums[r]), _mm512_slli_epi64(neg, 1)));
    float* out = c + r * ldc;
    if (cols == kBpCols) _mm256_storeu_ps(out, f);
    else _mm256_mask_storeu_ps(out, colmask, f);
  }
}

void bitplane_gemm(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool) {
  const size_t kw = words_for(k);
  const size_t row_words = kw * kBpPlanes;
  uint64_t* rp = scratch<1>(m * row_words + m);
  int64_t* sums = reinterpret_cast<int64_t*>(rp + m * row_words);
  // Planes: one pass over raw (O(m k), small next to the product).
  constexpr size_t kPackRows = 32;
  const size_t pack_tasks = m * k >= (size_t{1} << 18) ? (m + kPackRows - 1) / kPackRows : 1;
  pool.parallel_for(pack_tasks, [&](size_t t) {
    const size_t per = (m + pack_tasks - 1) / pack_tasks;
    pack_planes(raw, k, min_of(m, t * per), min_of(m, (t + 1) * per), rp, sums);
  });

  // Blocks of rows whose planes stay in L2 while a B tile (8 columns) stays in L1.
  const size_t row_bytes = row_words * sizeof(uint64_t);
  const size_t block_rows = max_of(kBpRows, (size_t{384} << 10) / row_bytes / kBpRows * kBpRows);
  const size_t m_blocks = (m + block_rows - 1) / block_rows;
  const size_t col_tiles = (n + kBpCols - 1) / kBpCols;
  constexpr size_t kTilesPerTask = 8;
  const size_t col_chunks = (col_tiles + kTilesPerTask - 1) / kTilesPerTask;

  pool.parallel_for(m_blocks * col_chunks, [&](size_t t) {
    const size_t mb = t / col_chunks, cc = t % col_chunks;
    const size_t r0 = mb * block_rows, r1 = min_of(m, r0 + block_rows);
    const size_t ct1 = min_of(col_tiles, (cc + 1) * kTilesPerTask);
    for (size_t ct = cc * kTilesPerTask; ct < ct1; ++ct) {
      const size_t j0 = ct * kBpCols, cols = min_of(kBpCols, n - j0);
      for (size_t r = r0; r < r1;) {
        const size_t nr = min_of(kBpRows, r1 - r);
        const uint64_t* rpr = rp + r * row_words;
        float* cr = c + r * n + j0;
        if (nr == 3) bp_tile<3>(rpr, sums + r, kw, b + j0 * kw, cols, cr, n);
        else if (nr == 2) bp_tile<2>(rpr, sums + r, kw, b + j0 * kw, cols, cr, n);
        else bp_tile<1>(rpr, sums + r, kw, b + j0 * kw, cols, cr, n);
        r += nr;
      }
    }
  });
}

}  // namespace

const Kernels kAvx512Kernels = {"avx512", pack_rows, pack_cols, gemm, bitplane_gemm};

}  // namespace bnn::xnor
