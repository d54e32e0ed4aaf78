// The per-ISA kernel table for bit-packing and XNOR-popcount GEMM. Each ISA file
// (xnor_gemm_avx512.cc, xnor_gemm_avx2.cc, xnor_gemm_portable.cc) defines one table;
// select.cc is the only place that chooses among them. Layouts follow reference.h.
//
// ISA files are compiled with their own -m flags. Everything in them lives in an
// anonymous namespace and they call no shared inline function (reference.h, <algorithm>):
// an inline function emitted from an AVX-512 file could be the copy the linker keeps for
// the whole addon, and then portable code would run AVX-512 instructions.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../common/thread_pool.h"

namespace bnn::xnor {

struct Kernels {
  const char* name;
  // Packs `rows` rows of k floats (row stride ld floats) into rows of packed_words(k) words.
  void (*pack_rows)(const float* src, size_t rows, size_t k, size_t ld, uint64_t* dst);
  // Packs columns [col_begin, col_end) of a row-major [k][n] matrix; dst row c holds column
  // c (dst points at column 0's row, so column c lands at dst + c * packed_words(k)).
  void (*pack_cols)(const float* src, size_t k, size_t n, size_t col_begin, size_t col_end, uint64_t* dst);
  // C[m][n] = k - 2 * popcount(A[m] ^ B[n]); A [m][kw], B [n][kw], kw = packed_words(k).
  // May split the work over `pool`.
  void (*gemm)(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k, ThreadPool& pool);
  // C[m][n] = sum_k raw[m][k] * s_B[n][k] for 8-bit raw [m][k] (row-major) and packed B [n][kw]
  // (bit 1 = -1): splits raw into bit planes itself, then
  // C = sum_b 2^b (popcount(P_b) - 2 popcount(P_b & B)). k <= ref::kBitplaneMaxK. May split
  // the work over `pool`.
  void (*bitplane_gemm)(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k,
                        ThreadPool& pool);
};

// Defined by the ISA files; the AVX files exist only on x86-64 builds.
extern const Kernels kPortableKernels;
#if defined(__x86_64__)
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;
#endif

}  // namespace bnn::xnor
