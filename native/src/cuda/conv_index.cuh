// Geometry of the packed binary conv2d, shared by the kernels (binary_conv.cu) and the CPU mirror
// in native/tools/cuda/harness.cu.
//
// Packed layout: each input pixel's in_c channels pack to cw = ceil(in_c/64) words (xp, NHWC order).
// An im2col row (one output position) is taps = k_h*k_w groups of cw words, tap t = kh*k_w + kw;
// a tap that falls outside the input is all-zero words, i.e. sign +1. The packed filter row of
// output channel o uses the same layout. The XNOR GEMM over taps*cw words with k_bits = taps*in_c
// then counts +sign(w) for every padded tap; pad_correction subtracts those (zero padding is 0, not +1).
#pragma once
#include <cstdint>

#include "kernels.cuh"

namespace bnn::cuda {

struct ConvGeom {
  int64_t batch, in_h, in_w, in_c;
  int64_t k_h, k_w, out_c;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;
  int64_t out_h, out_w;

  BNN_HD int64_t cw() const { return (in_c + 63) / 64; }
  BNN_HD int64_t taps() const { return k_h * k_w; }
  BNN_HD int64_t row_words() const { return taps() * cw(); }
  BNN_HD int64_t k_bits() const { return taps() * in_c; }
  BNN_HD int64_t positions() const { return batch * out_h * out_w; }
  BNN_HD int64_t pixels() const { return batch * in_h * in_w; }
};

// Input pixel read by output (oh, ow) through tap (kh, kw); false when it is padding.
BNN_HD bool conv_tap_source(const ConvGeom& g, int64_t oh, int64_t ow, int64_t kh, int64_t kw, int64_t* ih,
                            int64_t* iw) {
  *ih = oh * g.stride_h - g.pad_top + kh;
  *iw = ow * g.stride_w - g.pad_left + kw;
  return *ih >= 0 && *ih < g.in_h && *iw >= 0 && *iw < g.in_w;
}

// Source word of im2col word `idx` (of positions*row_words), or -1 for a padded (zero) word.
BNN_HD int64_t im2col_source_word(const ConvGeom& g, int64_t idx) {
  const int64_t cw = g.cw();
  const int64_t rw = g.row_words();
  const int64_t p = idx / rw;
  const int64_t rem = idx - p * rw;
  const int64_t t = rem / cw;
  const int64_t j = rem - t * cw;
  const int64_t ow = p % g.out_w;
  const int64_t oh = (p / g.out_w) % g.out_h;
  const int64_t n = p / (g.out_w * g.out_h);
  int64_t ih, iw;
  if (!conv_tap_source(g, oh, ow, t / g.k_w, t % g.k_w, &ih, &iw)) return -1;
  return ((n * g.in_h + ih) * g.in_w + iw) * cw + j;
}

// True when output (oh, ow) reads at least one padded tap (so it needs a correction).
BNN_HD bool conv_touches_padding(const ConvGeom& g, int64_t oh, int64_t ow) {
  const int64_t ih0 = oh * g.stride_h - g.pad_top;
  const int64_t iw0 = ow * g.stride_w - g.pad_left;
  return ih0 < 0 || iw0 < 0 || ih0 + g.k_h > g.in_h || iw0 + g.k_w > g.in_w;
}

// Sum over the padded taps of output (oh, ow) of wsum[t][o] (= sum over channels of sign(w[t][c][o])).
BNN_HD int32_t conv_pad_correction(const ConvGeom& g, const int32_t* wsum, int64_t oh, int64_t ow, int64_t o) {
  int32_t corr = 0;
  for (int64_t kh = 0; kh < g.k_h; ++kh) {
    for (int64_t kw = 0; kw < g.k_w; ++kw) {
      int64_t ih, iw;
      if (!conv_tap_source(g, oh, ow, kh, kw, &ih, &iw)) corr += wsum[(kh * g.k_w + kw) * g.out_c + o];
    }
  }
  return corr;
}

}  // namespace bnn::cuda
