// Geometry of a 2-D convolution, shared by the FP32 and binary paths.
// Layouts: input NHWC [batch][in_h][in_w][in_c], filter HWIO [filter_h][filter_w][in_c][out_c]
// (so the filter is a row-major [patch()][out_c] matrix), output NHWC [batch][out_h][out_w][out_c].
// Output (oh, ow) with tap (kh, kw) reads input (oh * stride_h + kh - pad_top,
// ow * stride_w + kw - pad_left); positions outside the input are zero (zero padding).
// Dilation is 1. The caller supplies the pads and output size (tfjs computes them for
// 'same' / 'valid'), so bottom/right padding is implied by out_h / out_w.
#pragma once
#include <cstddef>

#include "../common/check.h"

namespace bnn::conv {

struct Geometry {
  size_t batch = 0, in_h = 0, in_w = 0, in_c = 0;
  size_t filter_h = 0, filter_w = 0, out_c = 0;
  size_t stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0;
  size_t out_h = 0, out_w = 0;

  size_t taps() const { return filter_h * filter_w; }
  size_t patch() const { return taps() * in_c; }  // K of the im2col GEMM
  size_t out_rows() const { return batch * out_h * out_w; }
  size_t input_size() const { return batch * in_h * in_w * in_c; }
  size_t filter_size() const { return patch() * out_c; }
  size_t output_size() const { return out_rows() * out_c; }
  // Input row for output row oh and tap row kh, or -1 when it falls in the padding.
  long in_row(size_t oh, size_t kh) const { return in_index(oh, kh, stride_h, pad_top, in_h); }
  long in_col(size_t ow, size_t kw) const { return in_index(ow, kw, stride_w, pad_left, in_w); }
  // True when the convolution is a plain [rows][in_c] x [in_c][out_c] product.
  bool is_pointwise() const {
    return filter_h == 1 && filter_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 &&
           out_h == in_h && out_w == in_w;
  }

 private:
  static long in_index(size_t o, size_t k, size_t stride, size_t pad, size_t size) {
    const long i = static_cast<long>(o * stride + k) - static_cast<long>(pad);
    return i >= 0 && i < static_cast<long>(size) ? i : -1;
  }
};

inline void require_valid(const Geometry& g) {
  BNN_REQUIRE(g.batch > 0 && g.in_h > 0 && g.in_w > 0 && g.in_c > 0, "input dimensions must be positive");
  BNN_REQUIRE(g.filter_h > 0 && g.filter_w > 0 && g.out_c > 0, "filter dimensions must be positive");
  BNN_REQUIRE(g.stride_h > 0 && g.stride_w > 0, "strides must be positive");
  BNN_REQUIRE(g.out_h > 0 && g.out_w > 0, "output dimensions must be positive");
}

}  // namespace bnn::conv
