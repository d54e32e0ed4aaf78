// Scalar reference for the binary convolution: the float convolution of the signs,
// with zero padding (a padded position contributes 0, not +1 or -1).
#pragma once
#include <vector>

#include "../conv/reference.h"

namespace bnn::ref {

// The binary conv's oracle: conv(sign(x), sign(w)) with zero padding, sign(0) = +1.
inline void binary_conv2d(const float* x, const float* w, const conv::Geometry& g, float* out) {
  std::vector<float> sx(g.input_size()), sw(g.filter_size());
  for (size_t i = 0; i < sx.size(); ++i) sx[i] = x[i] < 0.0f ? -1.0f : 1.0f;
  for (size_t i = 0; i < sw.size(); ++i) sw[i] = w[i] < 0.0f ? -1.0f : 1.0f;
  conv2d(sx.data(), sw.data(), g, out);
}

}  // namespace bnn::ref
