// Scalar reference convolutions (direct loops, no im2col): the oracle for the FP32 conv
// kernels and, applied to signs, for the binary conv.
#pragma once
#include <cstddef>
#include <vector>

#include "geometry.h"

namespace bnn::ref {

// out = conv(x, w) with zero padding; double accumulation.
inline void conv2d(const float* x, const float* w, const conv::Geometry& g, float* out) {
  for (size_t n = 0; n < g.batch; ++n)
    for (size_t oh = 0; oh < g.out_h; ++oh)
      for (size_t ow = 0; ow < g.out_w; ++ow)
        for (size_t o = 0; o < g.out_c; ++o) {
          double s = 0;
          for (size_t kh = 0; kh < g.filter_h; ++kh) {
            const long ih = g.in_row(oh, kh);
            if (ih < 0) continue;
            for (size_t kw = 0; kw < g.filter_w; ++kw) {
              const long iw = g.in_col(ow, kw);
              if (iw < 0) continue;
              for (size_t c = 0; c < g.in_c; ++c)
                s += double(x[((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c]) *
                     w[((kh * g.filter_w + kw) * g.in_c + c) * g.out_c + o];
            }
          }
          out[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o] = static_cast<float>(s);
        }
}

// dx = d(sum(dy * conv(x, w))) / dx.
inline void conv2d_backprop_input(const float* dy, const float* w, const conv::Geometry& g, float* dx) {
  std::vector<double> acc(g.input_size(), 0.0);
  for (size_t n = 0; n < g.batch; ++n)
    for (size_t oh = 0; oh < g.out_h; ++oh)
      for (size_t ow = 0; ow < g.out_w; ++ow)
        for (size_t kh = 0; kh < g.filter_h; ++kh) {
          const long ih = g.in_row(oh, kh);
          if (ih < 0) continue;
          for (size_t kw = 0; kw < g.filter_w; ++kw) {
            const long iw = g.in_col(ow, kw);
            if (iw < 0) continue;
            for (size_t c = 0; c < g.in_c; ++c)
              for (size_t o = 0; o < g.out_c; ++o)
                acc[((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c] +=
                    double(dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o]) *
                    w[((kh * g.filter_w + kw) * g.in_c + c) * g.out_c + o];
          }
        }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
}

// dw = d(sum(dy * conv(x, w))) / dw.
inline void conv2d_backprop_filter(const float* x, const float* dy, const conv::Geometry& g, float* dw) {
  std::vector<double> acc(g.filter_size(), 0.0);
  for (size_t n = 0; n < g.batch; ++n)
    for (size_t oh = 0; oh < g.out_h; ++oh)
      for (size_t ow = 0; ow < g.out_w; ++ow)
        for (size_t kh = 0; kh < g.filter_h; ++kh) {
          const long ih = g.in_row(oh, kh);
          if (ih < 0) continue;
          for (size_t kw = 0; kw < g.filter_w; ++kw) {
            const long iw = g.in_col(ow, kw);
            if (iw < 0) continue;
            for (size_t c = 0; c < g.in_c; ++c)
              for (size_t o = 0; o < g.out_c; ++o)
                acc[((kh * g.filter_w + kw) * g.in_c + c) * g.out_c + o] +=
                    double(x[((n * g.in_h + ih) * g.in_w + iw) * g.in_c + c]) *
                    dy[((n * g.out_h + oh) * g.out_w + ow) * g.out_c + o];
          }
        }
  for (size_t i = 0; i < acc.size(); ++i) dw[i] = static_cast<float>(acc[i]);
}

}  // namespace bnn::ref
