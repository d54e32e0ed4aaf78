// Portable scalar reference for bit-packing and XNOR-popcount GEMM.
// Every optimised kernel (AVX-512, AVX2, CUDA) is checked bit-exactly against this file.
//
// Contract (shared by all kernels):
//  * A float x packs to bit 1 when x < 0 (sign -1) and bit 0 when x >= 0 (sign(0) = +1).
//  * Rows of K values pack into KW = ceil(K / 64) little-endian 64-bit words; element k
//    sits in word k / 64, bit k % 64. Bits past K (ragged tail) are 0 in every operand.
//  * For two packed rows a, b of length K: dot(sign a, sign b) = K - 2 * popcount(a ^ b),
//    because the zero tail bits xor to 0 and add nothing.
//  * xnor_gemm: C[m][n] = dot(A[m], B[n]) for A [M][KW], B [N][KW] (B holds the columns
//    of the right-hand matrix, i.e. it is the packed transpose), C row-major [M][N] float.
//  * bitplane_gemm: C[m][n] = sum_k raw[m][k] * s[k][n] for 8-bit raw [M][K] and signs
//    s = +1 (bit 0) / -1 (bit 1) from packed columns B [N][KW] (the same B as xnor_gemm).
//    Exact in float while 255 * K < 2^24 (K <= kBitplaneMaxK). Kernels split raw into 8 bit
//    planes P_b (packed like rows: bit k of P_b[m] = bit b of raw[m][k]) and use
//    C = sum_b 2^b * (popcount(P_b[m]) - 2 * popcount(P_b[m] & B[n])).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bnn::ref {

inline size_t packed_words(size_t k) { return (k + 63) / 64; }

// Packs `rows` rows of `k` floats (row stride `ld` floats) into rows of packed_words(k) words.
inline void pack_rows(const float* src, size_t rows, size_t k, size_t ld, uint64_t* dst) {
  const size_t kw = packed_words(k);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t w = 0; w < kw; ++w) {
      uint64_t word = 0;
      for (size_t j = 0; j < 64 && w * 64 + j < k; ++j) {
        if (src[r * ld + w * 64 + j] < 0.0f) word |= uint64_t{1} << j;
      }
      dst[r * kw + w] = word;
    }
  }
}

// Packs the columns of a row-major [k][n] matrix: dst row c holds column c (length k).
inline void pack_cols(const float* src, size_t k, size_t n, uint64_t* dst) {
  const size_t kw = packed_words(k);
  for (size_t c = 0; c < n; ++c) {
    for (size_t w = 0; w < kw; ++w) {
      uint64_t word = 0;
      for (size_t j = 0; j < 64 && w * 64 + j < k; ++j) {
        if (src[(w * 64 + j) * n + c] < 0.0f) word |= uint64_t{1} << j;
      }
      dst[c * kw + w] = word;
    }
  }
}

inline int32_t xnor_dot(const uint64_t* a, const uint64_t* b, size_t k) {
  const size_t kw = packed_words(k);
  int64_t diff = 0;
  for (size_t w = 0; w < kw; ++w) diff += __builtin_popcountll(a[w] ^ b[w]);
  return static_cast<int32_t>(static_cast<int64_t>(k) - 2 * diff);
}

inline void xnor_gemm(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k) {
  const size_t kw = packed_words(k);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) c[i * n + j] = static_cast<float>(xnor_dot(a + i * kw, b + j * kw, k));
}

// Largest K for which every bitplane_gemm result (|sum| <= 255 * K) is exact in float.
constexpr size_t kBitplaneMaxK = 65793;  // 255 * 65793 = 2^24 - 1

// Scalar oracle for bitplane_gemm: plain multiply-add with the unpacked signs.
inline void bitplane_gemm(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k) {
  const size_t kw = packed_words(k);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      int64_t sum = 0;
      for (size_t t = 0; t < k; ++t) {
        const bool negative = (b[j * kw + t / 64] >> (t % 64)) & 1;
        sum += negative ? -int64_t{raw[i * k + t]} : int64_t{raw[i * k + t]};
      }
      c[i * n + j] = static_cast<float>(sum);
    }
}

}  // namespace bnn::ref
