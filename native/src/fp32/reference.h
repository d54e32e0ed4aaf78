// Scalar reference for the row-major FP32 GEMM (double accumulation).
#pragma once
#include <cstddef>

namespace bnn::ref {

// C[m][n] = alpha * op(A) op(B) + beta * C; op(A) is [m][k] (A stored [k][m] when trans_a),
// op(B) is [k][n] (B stored [n][k] when trans_b). beta == 0 ignores C's old contents.
inline void sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
                  const float* b, float beta, float* c) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t p = 0; p < k; ++p)
        s += double(trans_a ? a[p * m + i] : a[i * k + p]) * (trans_b ? b[j * k + p] : b[p * n + j]);
      const double old = beta == 0.0f ? 0.0 : double(beta) * c[i * n + j];
      c[i * n + j] = static_cast<float>(alpha * s + old);
    }
}

}  // namespace bnn::ref
