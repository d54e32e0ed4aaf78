// Fused element-wise training kernels, multi-threaded over the global pool for large
// inputs. Results do not depend on the thread count: reductions use fixed chunks that are
// summed in order. In-place use (dst == src) is allowed where noted.
#pragma once
#include <cstddef>

#include "reference.h"

namespace bnn::elementwise {

using AdamWParams = ref::AdamWParams;

// dst[i] = x[i] < 0 ? -1 : +1 (sign(0) = +1, NaN -> +1, as the bit packing). dst may be src.
void sign_into(const float* src, float* dst, size_t n);
// Straight-through estimator: dst[i] = |x[i]| <= threshold ? grad[i] : 0 (paper A.1 uses
// threshold 1). dst may be grad.
void ste_grad(const float* grad, const float* x, float* dst, size_t n, float threshold = 1.0f);
// AdamW + clip in one pass, in place over p, m, v (semantics: ref::adamw, its return value too).
bool adamw(float* p, const float* g, float* m, float* v, size_t n, const AdamWParams& h);
// BatchNorm training forward / backward (semantics: ref::batch_norm_forward / _backward).
void batch_norm_forward(const float* x, size_t rows, size_t c, const float* gamma, const float* beta, float eps,
                        float* y, float* mean, float* inv_std);
void batch_norm_backward(const float* dy, const float* x, size_t rows, size_t c, const float* gamma,
                         const float* mean, const float* inv_std, float* dx, float* dgamma, float* dbeta);
// Inference: y[r][j] = x[r][j] * scale[j] + shift[j]. y may be x.
void batch_norm_apply(const float* x, size_t rows, size_t c, const float* scale, const float* shift, float* y);

}  // namespace bnn::elementwise
