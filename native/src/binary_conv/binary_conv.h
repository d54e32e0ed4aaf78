// Binary conv2d: im2col of sign bits + XNOR GEMM + a zero-padding correction.
// See native/README.md ("Binary convolution and zero padding") for the derivation.
#pragma once
#include <cstdint>

#include "../conv/geometry.h"
#include "../xnor_gemm/xnor_gemm.h"

namespace bnn::binary_conv {

// out [batch][out_h][out_w][out_c] = conv(sign(x), sign(w)) with zero padding, exactly.
// x: NHWC floats. w_bits: the HWIO filter packed as xnor::pack_cols(w, g.patch(), g.out_c),
// i.e. [out_c][packed_words(patch)] words, bit (kh * filter_w + kw) * in_c + c of row o
// = sign bit of w[kh][kw][c][o].
void conv2d(const float* x, const uint64_t* w_bits, const conv::Geometry& g, float* out,
            const xnor::Kernels& kern = xnor::active_kernels());

}  // namespace bnn::binary_conv
