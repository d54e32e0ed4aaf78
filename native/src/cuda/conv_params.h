// The C API's conv parameters (bnn_cuda_conv2d_params, int64 fields) and the CPU kernels'
// conv::Geometry (size_t fields) name the same NHWC/HWIO convolution; these convert one to the
// other, so the CUDA addon validates with the shared binding layer and the CUDA harness checks
// against the shared oracle (native/src/binary_conv/reference.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "../conv/geometry.h"
#include "bnn_cuda.h"

namespace bnn::cuda {

// Calls f(params field, geometry field) for every field: the one statement of which is which,
// one line per row of bnn_cuda_conv2d_params.
template <class P, class G, class F>
void for_each_conv_field(P& p, G& g, F f) {
  f(p.batch, g.batch), f(p.in_h, g.in_h), f(p.in_w, g.in_w), f(p.in_c, g.in_c);
  f(p.k_h, g.filter_h), f(p.k_w, g.filter_w), f(p.out_c, g.out_c);
  f(p.stride_h, g.stride_h), f(p.stride_w, g.stride_w);
  f(p.pad_top, g.pad_top), f(p.pad_left, g.pad_left);
  f(p.out_h, g.out_h), f(p.out_w, g.out_w);
}

inline bnn_cuda_conv2d_params to_conv2d_params(const conv::Geometry& g) {
  bnn_cuda_conv2d_params p{};
  for_each_conv_field(p, g, [](int64_t& to, size_t from) { to = int64_t(from); });
  return p;
}

// For parameters that passed the C API's checks (no negative field).
inline conv::Geometry to_geometry(const bnn_cuda_conv2d_params& p) {
  conv::Geometry g;
  for_each_conv_field(p, g, [](int64_t from, size_t& to) { to = size_t(from); });
  return g;
}

}  // namespace bnn::cuda
