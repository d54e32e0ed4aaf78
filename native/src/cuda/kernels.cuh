// Internal launchers of the CUDA kernels. Callers (bnn_cuda.cu) have already checked the contract;
// launchers only assert it in debug builds and return the launch status.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#if defined(__CUDACC__)
#define BNN_HD __host__ __device__ __forceinline__
#else
#define BNN_HD inline
#endif

namespace bnn::cuda {

// True when this build has machine code (or PTX) for the current device.
bool pack_kernels_available();

// Sign-packs rows of k floats (stride ld) into rows of dst_words32 uint32 words (dst row stride is
// dst_words32; words past ceil(k/32) are written 0). uint64 packing = dst_words32 = 2*ceil(k/64).
cudaError_t launch_pack_rows(const float* src, int64_t rows, int64_t k, int64_t ld, uint32_t* dst,
                             int64_t dst_words32, cudaStream_t stream);

// Packed transpose of `taps` stacked [k][n] matrices (row stride ld, tap stride src_tap_stride floats):
// column c of tap t becomes words32 uint32 words at dst + c*dst_row_stride32 + t*dst_tap_stride32.
cudaError_t launch_pack_cols(const float* src, int64_t k, int64_t n, int64_t ld, int64_t taps,
                             int64_t src_tap_stride, uint32_t* dst, int64_t dst_row_stride32,
                             int64_t dst_tap_stride32, int64_t words32, cudaStream_t stream);

// out[r] = popcount of the kw uint64 words of packed row r.
cudaError_t launch_row_popcounts(const uint64_t* packed, int64_t rows, int64_t kw, int32_t* out,
                                 cudaStream_t stream);

// C[m][n] = k_bits - 2 * popc(A[m] ^ B[n]) over kw words; rows hold kw words, bits past k_bits are 0.
cudaError_t launch_xnor_gemm_popc(const uint64_t* a, const uint64_t* b, float* c, int m, int n, int kw,
                                  int k_bits, cudaStream_t stream);

// Same result through b1 tensor cores: k_bits - 2*pa[m] - 2*pb[n] + 4*popc(A[m] & B[n]).
cudaError_t launch_xnor_gemm_mma(const uint64_t* a, const uint64_t* b, float* c, const int32_t* pa,
                                 const int32_t* pb, int m, int n, int kw, int k_bits, cudaStream_t stream);
// True when the mma kernel has machine code for the current device (sm_80+ build present).
bool mma_kernel_available();

// Binary conv2d pieces (see conv_index.cuh for the geometry).
struct ConvGeom;
cudaError_t launch_im2col_packed(const uint64_t* xp, uint64_t* col, const ConvGeom& g, cudaStream_t stream);
cudaError_t launch_filter_tap_sums(const uint64_t* wp, int32_t* wsum, const ConvGeom& g, cudaStream_t stream);
cudaError_t launch_conv_pad_correction(float* y, const int32_t* wsum, const ConvGeom& g, cudaStream_t stream);

}  // namespace bnn::cuda
