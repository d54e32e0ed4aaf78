// Binary conv2d pieces around the XNOR GEMM: packed im2col, per-tap filter sign sums, and the
// zero-padding correction. Layout and algebra: cuda/conv_index.cuh.
#include <algorithm>

#include "../cuda/conv_index.cuh"
#include "../cuda/kernels.cuh"

namespace bnn::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t items) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((items + kThreads - 1) / kThreads, 1 << 20)));
}

// One thread per im2col word (grid-stride): a gather of packed pixels, zero words for padded taps.
__global__ void __launch_bounds__(kThreads)
    im2col_packed_kernel(const uint64_t* __restrict__ xp, uint64_t* __restrict__ col, ConvGeom g) {
  const int64_t total = g.positions() * g.row_words();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t src = im2col_source_word(g, i);
    col[i] = src >= 0 ? xp[src] : 0;
  }
}

// wsum[t][o] = sum_c sign(w[t][c][o]) = in_c - 2 * popc(packed filter row o, tap t).
__global__ void __launch_bounds__(kThreads)
    filter_tap_sums_kernel(const uint64_t* __restrict__ wp, int32_t* __restrict__ wsum, ConvGeom g) {
  const int64_t total = g.taps() * g.out_c;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t cw = g.cw();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t t = i / g.out_c;
    const int64_t o = i - t * g.out_c;
    const uint64_t* words = wp + o * g.row_words() + t * cw;
    int count = 0;
    for (int64_t j = 0; j < cw; ++j) count += __popcll(words[j]);
    wsum[i] = static_cast<int32_t>(g.in_c) - 2 * count;
  }
}

// y[p][o] -= sum over the padded taps of p of wsum[t][o]; positions clear of padding return at once.
__global__ void __launch_bounds__(kThreads)
    conv_pad_correction_kernel(float* __restrict__ y, const int32_t* __restrict__ wsum, ConvGeom g) {
  const int64_t total = g.positions() * g.out_c;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t p = i / g.out_c;
    const int64_t o = i - p * g.out_c;
    const int64_t ow = p % g.out_w;
    const int64_t oh = (p / g.out_w) % g.out_h;
    if (!conv_touches_padding(g, oh, ow)) continue;
    y[i] -= static_cast<float>(conv_pad_correction(g, wsum, oh, ow, o));
  }
}

}  // namespace

cudaError_t launch_im2col_packed(const uint64_t* xp, uint64_t* col, const ConvGeom& g, cudaStream_t stream) {
  im2col_packed_kernel<<<grid_for(g.positions() * g.row_words()), kThreads, 0, stream>>>(xp, col, g);
  return cudaGetLastError();
}

cudaError_t launch_filter_tap_sums(const uint64_t* wp, int32_t* wsum, const ConvGeom& g, cudaStream_t stream) {
  filter_tap_sums_kernel<<<grid_for(g.taps() * g.out_c), kThreads, 0, stream>>>(wp, wsum, g);
  return cudaGetLastError();
}

cudaError_t launch_conv_pad_correction(float* y, const int32_t* wsum, const ConvGeom& g, cudaStream_t stream) {
  conv_pad_correction_kernel<<<grid_for(g.positions() * g.out_c), kThreads, 0, stream>>>(y, wsum, g);
  return cudaGetLastError();
}

}  // namespace bnn::cuda
