// XNOR GEMM on CUDA cores: C = k - 2 * sum_w popc(A[m][w] ^ B[n][w]). Portable fallback of the
// tensor-core kernel (any compute capability the file is built for).
//
// Block 128x128 of C, 256 threads in a 16x16 grid, each thread an 8x8 register block (rows
// ty + 16i, columns tx + 16j), K staged through shared memory 8 words (512 bits) at a time.
// Shared rows are padded to 9 words so the 16 distinct B rows a half-warp reads hit distinct banks.
#include "../cuda/kernels.cuh"

namespace bnn::cuda {
namespace {

constexpr int kBM = 128;
constexpr int kBN = 128;
constexpr int kBKW = 8;
constexpr int kPad = kBKW + 1;
constexpr int kThreads = 256;
constexpr int kTM = 8;
constexpr int kTN = 8;
static_assert(16 * kTM == kBM && 16 * kTN == kBN && kThreads == 256, "16x16 threads, 8x8 each");

// Grid: x over M tiles, y over N tiles.
__global__ void __launch_bounds__(kThreads, 2)
    xnor_gemm_popc_kernel(const uint64_t* __restrict__ a, const uint64_t* __restrict__ b, float* __restrict__ c,
                          int m, int n, int kw, int k_bits) {
  __shared__ uint64_t sa[kBM][kPad];
  __shared__ uint64_t sb[kBN][kPad];
  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid & 15;
  const int ty = tid >> 4;
  const int bm = static_cast<int>(blockIdx.x) * kBM;
  const int bn = static_cast<int>(blockIdx.y) * kBN;

  int diff[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) diff[i][j] = 0;

  for (int k0 = 0; k0 < kw; k0 += kBKW) {
#pragma unroll
    for (int q = tid; q < kBM * kBKW; q += kThreads) {
      const int r = q / kBKW;
      const int w = q % kBKW;
      const bool kin = k0 + w < kw;
      sa[r][w] = (kin && bm + r < m) ? a[static_cast<int64_t>(bm + r) * kw + k0 + w] : 0;
      sb[r][w] = (kin && bn + r < n) ? b[static_cast<int64_t>(bn + r) * kw + k0 + w] : 0;
    }
    __syncthreads();
#pragma unroll
    for (int w = 0; w < kBKW; ++w) {
      uint64_t av[kTM], bv[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) av[i] = sa[ty + 16 * i][w];
#pragma unroll
      for (int j = 0; j < kTN; ++j) bv[j] = sb[tx + 16 * j][w];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) diff[i][j] += __popcll(av[i] ^ bv[j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int row = bm + ty + 16 * i;
    if (row >= m) continue;
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int col = bn + tx + 16 * j;
      if (col < n) c[static_cast<int64_t>(row) * n + col] = static_cast<float>(k_bits - 2 * diff[i][j]);
    }
  }
}

}  // namespace

cudaError_t launch_xnor_gemm_popc(const uint64_t* a, const uint64_t* b, float* c, int m, int n, int kw,
                                  int k_bits, cudaStream_t stream) {
  const dim3 grid((m + kBM - 1) / kBM, (n + kBN - 1) / kBN);
  xnor_gemm_popc_kernel<<<grid, kThreads, 0, stream>>>(a, b, c, m, n, kw, k_bits);
  return cudaGetLastError();
}

}  // namespace bnn::cuda
