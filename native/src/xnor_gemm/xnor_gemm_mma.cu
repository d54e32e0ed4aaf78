// XNOR GEMM on 1-bit tensor cores: mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc (sm_80+).
// Tensor cores give popc(a & b); with row popcounts pa, pb: popc(a ^ b) = pa + pb - 2*popc(a & b),
// so C = k - 2*popc(a ^ b) = k - 2*pa - 2*pb + 4*popc(a & b). Zero tail bits add to no count.
//
// Block 128x128 of C, 8 warps (warp tile 64x32 = 4 m16 x 4 n8 mma tiles), K staged through shared
// memory 512 bits per row per stage in a 4-deep cp.async pipeline. Index maps: cuda/mma_b1_tile.cuh.
#include <atomic>

#include "../cuda/kernels.cuh"
#include "../cuda/mma_b1_tile.cuh"

namespace bnn::cuda {
namespace {

using namespace mma_tile;

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// src_bytes 0 zero-fills the destination without reading the source.
template <int kVec>
__device__ __forceinline__ void cp_async(uint64_t* smem, const uint64_t* gmem, bool valid) {
  const uint32_t dst = smem_u32(smem);
  const int src_bytes = valid ? kVec : 0;
  if constexpr (kVec == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes) : "memory");
  }
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void mma_b1_and_popc(int d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Fills stage buffers of A (rows bm..) and B (rows bn..) with k-tile kt.
template <int kVec>
__device__ __forceinline__ void load_stage(uint64_t* stage, const uint64_t* __restrict__ a, const uint64_t* __restrict__ b,
                                           int m, int n, int kw, int bm, int bn, int kt, int tid) {
  uint64_t* sa = stage;
  uint64_t* sb = stage + kTileWords;
  const int k0 = kt * kBKW;
#pragma unroll
  for (int j = 0; j < CopiesPerThread<kVec>::value; ++j) {
    const TileCopy ca = tile_copy<kVec>(tid, j, bm, m, k0, kw);
    cp_async<kVec>(sa + ca.smem, a + ca.gmem, ca.valid);
    const TileCopy cb = tile_copy<kVec>(tid, j, bn, n, k0, kw);
    cp_async<kVec>(sb + cb.smem, b + cb.gmem, cb.valid);
  }
}

// Grid: x over M tiles, y over N tiles. vec2_out: C is 8-byte aligned and n even (float2 stores).
template <int kVec>
__global__ void __launch_bounds__(kThreads, 2)
    xnor_gemm_mma_kernel(const uint64_t* __restrict__ a, const uint64_t* __restrict__ b, float* __restrict__ c,
                         const int32_t* __restrict__ pa, const int32_t* __restrict__ pb, int m, int n, int kw,
                         int k_bits, int vec2_out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) uint64_t smem[];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int bm = static_cast<int>(blockIdx.x) * kBM;
  const int bn = static_cast<int>(blockIdx.y) * kBN;
  const int ktiles = (kw + kBKW - 1) / kBKW;
  const int row_w = warp_row0(warp);
  const int col_w = warp_col0(warp);

  int acc[kMT][kNT][4];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ktiles) load_stage<kVec>(smem + s * kStageWords, a, b, m, n, kw, bm, bn, s, tid);
    cp_async_commit();
  }

  for (int kt = 0; kt < ktiles; ++kt) {
    // Groups committed so far: kStages-1+kt; at most kStages-2 pending => tile kt has landed.
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile kt visible to all; every warp is done with the stage refilled below
    const int next = kt + kStages - 1;
    if (next < ktiles) load_stage<kVec>(smem + (next % kStages) * kStageWords, a, b, m, n, kw, bm, bn, next, tid);
    cp_async_commit();

    const uint64_t* sa = smem + (kt % kStages) * kStageWords;
    const uint64_t* sb = sa + kTileWords;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      uint32_t af[kMT][4];
      uint32_t bf[kNT][2];
#pragma unroll
      for (int i = 0; i < kMT; ++i) load_a_frag(sa, row_w + 16 * i, ks, lane, af[i]);
#pragma unroll
      for (int j = 0; j < kNT; ++j) load_b_frag(sb, col_w + 8 * j, ks, lane, bf[j]);
#pragma unroll
      for (int i = 0; i < kMT; ++i)
#pragma unroll
        for (int j = 0; j < kNT; ++j) mma_b1_and_popc(acc[i][j], af[i], bf[j]);
    }
  }
  cp_async_wait<0>();

  // Epilogue: registers e = 0,1 are columns (2t, 2t+1) of row g; e = 2,3 the same of row g+8.
  int pbv[kNT][2];
#pragma unroll
  for (int j = 0; j < kNT; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = bn + col_w + 8 * j + acc_col(lane, e);
      pbv[j][e] = col < n ? pb[col] : 0;
    }
#pragma unroll
  for (int i = 0; i < kMT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = bm + row_w + 16 * i + acc_row(lane, 2 * h);
      if (row >= m) continue;
      const int par = pa[row];
      float* crow = c + static_cast<int64_t>(row) * n;
#pragma unroll
      for (int j = 0; j < kNT; ++j) {
        const int col = bn + col_w + 8 * j + acc_col(lane, 2 * h);
        const float v0 = static_cast<float>(xnor_from_and(k_bits, par, pbv[j][0], acc[i][j][2 * h]));
        const float v1 = static_cast<float>(xnor_from_and(k_bits, par, pbv[j][1], acc[i][j][2 * h + 1]));
        if (vec2_out && col + 1 < n) {
          *reinterpret_cast<float2*>(crow + col) = make_float2(v0, v1);
        } else {
          if (col < n) crow[col] = v0;
          if (col + 1 < n) crow[col + 1] = v1;
        }
      }
    }
  }
#endif
}

template <int kVec>
cudaError_t prepare_kernel() {
  // The dynamic shared-memory opt-in is per device; remember which devices have it.
  static std::atomic<uint64_t> done{0};
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  const uint64_t bit = dev < 64 ? (uint64_t{1} << dev) : 0;
  if (bit && (done.load(std::memory_order_relaxed) & bit)) return cudaSuccess;
  err = cudaFuncSetAttribute(xnor_gemm_mma_kernel<kVec>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kSmemBytes));
  if (err == cudaSuccess && bit) done.fetch_or(bit, std::memory_order_relaxed);
  return err;
}

}  // namespace

bool mma_kernel_available() {
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, xnor_gemm_mma_kernel<16>) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  // binaryVersion < 80 means the body was compiled out (an extra pre-sm_80 target).
  return major >= 8 && attr.binaryVersion >= 80;
}

cudaError_t launch_xnor_gemm_mma(const uint64_t* a, const uint64_t* b, float* c, const int32_t* pa,
                                 const int32_t* pb, int m, int n, int kw, int k_bits, cudaStream_t stream) {
  const dim3 grid((m + kBM - 1) / kBM, (n + kBN - 1) / kBN);
  const bool vec16 = (kw % 2 == 0) && (reinterpret_cast<uintptr_t>(a) % 16 == 0) &&
                     (reinterpret_cast<uintptr_t>(b) % 16 == 0);
  const int vec2_out = (n % 2 == 0) && (reinterpret_cast<uintptr_t>(c) % 8 == 0);
  cudaError_t err;
  if (vec16) {
    if ((err = prepare_kernel<16>()) != cudaSuccess) return err;
    xnor_gemm_mma_kernel<16><<<grid, kThreads, kSmemBytes, stream>>>(a, b, c, pa, pb, m, n, kw, k_bits, vec2_out);
  } else {
    if ((err = prepare_kernel<8>()) != cudaSuccess) return err;
    xnor_gemm_mma_kernel<8><<<grid, kThreads, kSmemBytes, stream>>>(a, b, c, pa, pb, m, n, kw, k_bits, vec2_out);
  }
  return cudaGetLastError();
}

}  // namespace bnn::cuda
