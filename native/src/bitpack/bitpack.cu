// Sign + bit-pack of float rows and columns on the device, and row popcounts.
// Bit j of 32-bit word w of a row is (x[32w + j] < 0) (sign(0) = +1, NaN packs as +1 like the
// reference); words past the row's elements are 0. A uint64 row is two such 32-bit words, low first
// (little-endian), which is exactly reference.h's layout.
#include <algorithm>

#include "../cuda/kernels.cuh"

namespace bnn::cuda {
namespace {

constexpr int kThreads = 256;

// One warp per 32-bit output word: each lane reads one float (coalesced), __ballot_sync packs them.
__global__ void __launch_bounds__(kThreads)
    pack_rows_kernel(const float* __restrict__ src, int64_t rows, int64_t k, int64_t ld, uint32_t* __restrict__ dst,
                     int64_t words) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t warp0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t total = rows * words;
  for (int64_t i = warp0; i < total; i += nwarps) {  // warp-uniform loop
    const int64_t r = i / words;
    const int64_t col = (i - r * words) * 32 + lane;
    const bool neg = col < k && src[r * ld + col] < 0.0f;
    const uint32_t bits = __ballot_sync(0xffffffffu, neg);
    if (lane == 0) dst[i] = bits;
  }
}

// One thread per (column, 32-bit word, tap): 32 coalesced row reads across the warp's columns.
__global__ void __launch_bounds__(kThreads)
    pack_cols_kernel(const float* __restrict__ src, int64_t k, int64_t n, int64_t ld, int64_t src_tap_stride,
                     uint32_t* __restrict__ dst, int64_t dst_row_stride, int64_t dst_tap_stride, int64_t words) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= n) return;
  const int64_t tap = blockIdx.z;
  const float* s = src + tap * src_tap_stride + col;
  uint32_t* d = dst + col * dst_row_stride + tap * dst_tap_stride;
  for (int64_t w = blockIdx.y; w < words; w += gridDim.y) {
    const int64_t k0 = w * 32;
    uint32_t bits = 0;
    if (k0 + 32 <= k) {
#pragma unroll
      for (int j = 0; j < 32; ++j) bits |= static_cast<uint32_t>(s[(k0 + j) * ld] < 0.0f) << j;
    } else {
      for (int j = 0; k0 + j < k; ++j) bits |= static_cast<uint32_t>(s[(k0 + j) * ld] < 0.0f) << j;
    }
    d[w] = bits;
  }
}

// One warp per row.
__global__ void __launch_bounds__(kThreads)
    row_popcounts_kernel(const uint64_t* __restrict__ packed, int64_t rows, int64_t kw, int32_t* __restrict__ out) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t warp0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t r = warp0; r < rows; r += nwarps) {
    const uint64_t* row = packed + r * kw;
    int count = 0;
    for (int64_t w = lane; w < kw; w += 32) count += __popcll(row[w]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) count += __shfl_xor_sync(0xffffffffu, count, off);
    if (lane == 0) out[r] = count;
  }
}

int64_t warp_grid(int64_t warps_needed) {
  // Enough blocks to fill any current GPU several times over; the kernels grid-stride the rest.
  const int64_t blocks = (warps_needed + kThreads / 32 - 1) / (kThreads / 32);
  return std::max<int64_t>(1, std::min<int64_t>(blocks, 65536));
}

}  // namespace

bool pack_kernels_available() {
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, pack_rows_kernel) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return true;
}

cudaError_t launch_pack_rows(const float* src, int64_t rows, int64_t k, int64_t ld, uint32_t* dst,
                             int64_t dst_words32, cudaStream_t stream) {
  pack_rows_kernel<<<static_cast<unsigned>(warp_grid(rows * dst_words32)), kThreads, 0, stream>>>(src, rows, k, ld, dst,
                                                                                                 dst_words32);
  return cudaGetLastError();
}

cudaError_t launch_pack_cols(const float* src, int64_t k, int64_t n, int64_t ld, int64_t taps,
                             int64_t src_tap_stride, uint32_t* dst, int64_t dst_row_stride32,
                             int64_t dst_tap_stride32, int64_t words32, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min<int64_t>(words32, 65535)), static_cast<unsigned>(taps));
  pack_cols_kernel<<<grid, kThreads, 0, stream>>>(src, k, n, ld, src_tap_stride, dst, dst_row_stride32,
                                                  dst_tap_stride32, words32);
  return cudaGetLastError();
}

cudaError_t launch_row_popcounts(const uint64_t* packed, int64_t rows, int64_t kw, int32_t* out,
                                 cudaStream_t stream) {
  row_popcounts_kernel<<<static_cast<unsigned>(warp_grid(rows)), kThreads, 0, stream>>>(packed, rows, kw, out);
  return cudaGetLastError();
}

}  // namespace bnn::cuda
