// FP32 GEMM through OpenBLAS and NHWC/HWIO conv2d (forward, backprop-input,
// backprop-filter) as im2col/col2im + sgemm. Conv semantics match tfjs' Conv2D,
// Conv2DBackpropInput and Conv2DBackpropFilter with dilation 1 (see conv/geometry.h).
#pragma once
#include <cstddef>
#include <string>

#include "../conv/geometry.h"

namespace bnn::fp32 {

// Row-major C[m][n] = alpha * op(A) op(B) + beta * C (op as in fp32/reference.h).
void sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a, const float* b,
           float beta, float* c);

void conv2d(const float* x, const float* w, const conv::Geometry& g, float* out);
void conv2d_backprop_input(const float* dy, const float* w, const conv::Geometry& g, float* dx);
void conv2d_backprop_filter(const float* x, const float* dy, const conv::Geometry& g, float* dw);

// OpenBLAS is kept single-threaded (sgemm threads over shape-fixed tiles in the pool, so
// results do not depend on the thread count); and its build/core description.
void set_blas_threads(size_t n);
// Tiled (default): deterministic whatever the thread count. Untiled: one OpenBLAS call
// threaded by OpenBLAS, whose results change with the thread count (benchmark baseline).
void set_tiled(bool tiled);
bool tiled();
size_t blas_threads();
std::string blas_config();

}  // namespace bnn::fp32
