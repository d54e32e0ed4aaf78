// Scalar binary conv2d oracle for the CUDA harness: float loops over signs, zero padding.
// y[n][oh][ow][o] = sum over in-bounds taps (kh, kw) and channels c of
//                   sign(x[n][ih][iw][c]) * sign(w[kh][kw][c][o]),  ih = oh*stride_h - pad_top + kh,
//                   iw = ow*stride_w - pad_left + kw; taps outside the input contribute 0.
#pragma once
#include <cstdint>

#include "cuda/bnn_cuda.h"
#include "test_util.h"

namespace bnn::cuda_test {

inline void binary_conv2d_ref(const float* x, const float* w, float* y, const bnn_cuda_conv2d_params& p) {
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oh = 0; oh < p.out_h; ++oh)
      for (int64_t ow = 0; ow < p.out_w; ++ow)
        for (int64_t o = 0; o < p.out_c; ++o) {
          float acc = 0.0f;
          for (int64_t kh = 0; kh < p.k_h; ++kh) {
            const int64_t ih = oh * p.stride_h - p.pad_top + kh;
            if (ih < 0 || ih >= p.in_h) continue;
            for (int64_t kw = 0; kw < p.k_w; ++kw) {
              const int64_t iw = ow * p.stride_w - p.pad_left + kw;
              if (iw < 0 || iw >= p.in_w) continue;
              const float* xs = x + ((n * p.in_h + ih) * p.in_w + iw) * p.in_c;
              const float* ws = w + (kh * p.k_w + kw) * p.in_c * p.out_c + o;
              for (int64_t c = 0; c < p.in_c; ++c) acc += sign_of(xs[c]) * sign_of(ws[c * p.out_c]);
            }
          }
          y[((n * p.out_h + oh) * p.out_w + ow) * p.out_c + o] = acc;
        }
}

}  // namespace bnn::cuda_test
