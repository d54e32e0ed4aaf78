// Timings of the CUDA harness: XNOR GEMM (tensor-core and popc) vs cuBLAS sgemm / tf32 / bf16 at
// square sizes, CUDA events around each call, warm-up then the median of many calls.
// Binary TOPS = 2*M*N*K / time: each XNOR-popcount of one bit pair counted as one multiply-add,
// the same count as the float GEMMs' FLOPs.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#ifdef BNN_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

#include "cuda/bnn_cuda.h"
#include "xnor_gemm/reference.h"
#include "gpu_checks.h"

namespace bnn::cuda_test {

struct BenchRow {
  int size;
  std::string kernel;
  double ms;  // < 0: not run
};

__global__ void fill_uniform_kernel(float* p, size_t count, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + i * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    p[i] = float(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
  }
}

__global__ void to_bf16_kernel(const float* src, __nv_bfloat16* dst, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16(src[i]);
}

__global__ void count_mismatch_kernel(const float* a, const float* b, size_t count, unsigned long long* out) {
  unsigned long long local = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    local += __float_as_uint(a[i]) != __float_as_uint(b[i]);
  if (local) atomicAdd(out, local);
}

// Median milliseconds of `reps` timed calls after `warmup` untimed ones; < 0 if a call failed.
template <class F>
double median_ms(F&& call, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i)
    if (!call()) return -1.0;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(start, nullptr);
    const bool ok = call();
    cudaEventRecord(stop, nullptr);
    cudaEventSynchronize(stop);
    float t = 0.0f;
    cudaEventElapsedTime(&t, start, stop);
    if (!ok) {
      ms.clear();
      break;
    }
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (ms.empty() || cudaGetLastError() != cudaSuccess) return -1.0;
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

inline void run_bench_size(Checks& ck, int size, int reps, bool mma, std::vector<BenchRow>& rows) {
  const size_t s = size_t(size), kw = ref::packed_words(s), elems = s * s;
  const int warmup = 3;
  DeviceBuffer fa(elems * 4), fb(elems * 4), pa(s * kw * 8), pb(s * kw * 8), c1(elems * 4), c2(elems * 4), mism(8);
  if (!(fa.ok() && fb.ok() && pa.ok() && pb.ok() && c1.ok() && c2.ok() && mism.ok())) {
    ck.expect(false, "bench %d: device allocation failed", size);
    return;
  }
  fill_uniform_kernel<<<1024, 256>>>(fa.as<float>(), elems, 1234u + size);
  fill_uniform_kernel<<<1024, 256>>>(fb.as<float>(), elems, 5678u + size);
  cudaDeviceSynchronize();

  auto pack_a = [&] { return bnn_cuda_pack_rows(fa.as<float>(), size, size, size, pa.as<void>(), 64, nullptr) == BNN_CUDA_OK; };
  auto pack_b = [&] { return bnn_cuda_pack_cols(fb.as<float>(), size, size, size, pb.as<void>(), 64, nullptr) == BNN_CUDA_OK; };
  rows.push_back({size, "pack rows (A)", median_ms(pack_a, warmup, reps)});
  rows.push_back({size, "pack cols (B)", median_ms(pack_b, warmup, reps)});
  auto gemm = [&](int variant, float* out) {
    return [&, variant, out] {
      return bnn_cuda_xnor_gemm(pa.as<uint64_t>(), pb.as<uint64_t>(), out, size, size, size, variant, nullptr, nullptr,
                                nullptr) == BNN_CUDA_OK;
    };
  };
  if (mma) rows.push_back({size, "xnor gemm mma (b1 tensor cores)", median_ms(gemm(BNN_CUDA_GEMM_MMA, c1.as<float>()), warmup, reps)});
  rows.push_back({size, "xnor gemm popc (CUDA cores)", median_ms(gemm(BNN_CUDA_GEMM_POPC, c2.as<float>()), warmup, reps)});

  // Correctness at full size: mma == popc bit for bit, and sampled entries == the scalar reference.
  if (mma) {
    cudaMemset(mism.as<void>(), 0, 8);
    count_mismatch_kernel<<<1024, 256>>>(c1.as<float>(), c2.as<float>(), elems, mism.as<unsigned long long>());
    const auto n_bad = mism.download<unsigned long long>(1);
    ck.expect(!n_bad.empty() && n_bad[0] == 0, "bench %d: mma and popc results differ in %llu entries", size,
              n_bad.empty() ? 0ull : n_bad[0]);
  }
  const auto ha = pa.download<uint64_t>(s * kw), hb = pb.download<uint64_t>(s * kw);
  const auto hc = c2.download<float>(elems);
  std::mt19937_64 rng(size);
  size_t bad = 0;
  for (int q = 0; q < 512 && !hc.empty(); ++q) {
    const size_t i = rng() % s, j = rng() % s;
    bad += hc[i * s + j] != float(ref::xnor_dot(ha.data() + i * kw, hb.data() + j * kw, s));
  }
  ck.expect(!hc.empty() && bad == 0, "bench %d: %zu of 512 sampled popc entries differ from the reference", size, bad);
  // Sampled packed bits against the float sources (A row-packed, B column-packed).
  bad = 0;
  for (int q = 0; q < 256 && !ha.empty() && !hb.empty(); ++q) {
    const size_t i = rng() % s, kk = rng() % s;
    float xa = 0.0f, xb = 0.0f;
    bnn_cuda_memcpy(&xa, fa.as<float>() + i * s + kk, 4);
    bnn_cuda_memcpy(&xb, fb.as<float>() + kk * s + i, 4);
    bad += (((ha[i * kw + kk / 64] >> (kk % 64)) & 1) != uint64_t(xa < 0.0f)) +
           (((hb[i * kw + kk / 64] >> (kk % 64)) & 1) != uint64_t(xb < 0.0f));
  }
  ck.expect(!ha.empty() && bad == 0, "bench %d: %zu of 512 sampled packed bits differ from the float signs", size, bad);

#ifdef BNN_HAVE_CUBLAS
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    std::printf("cuBLAS: cublasCreate failed; no cuBLAS timings\n");
    return;
  }
  const float one = 1.0f, zero = 0.0f;
  auto sgemm = [&] {
    return cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, size, size, size, &one, fb.as<float>(), size, fa.as<float>(), size,
                       &zero, c1.as<float>(), size) == CUBLAS_STATUS_SUCCESS;
  };
  rows.push_back({size, "cublas sgemm (fp32)", median_ms(sgemm, warmup, reps)});
  auto tf32 = [&] {
    return cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, size, size, size, &one, fb.as<float>(), CUDA_R_32F, size,
                        fa.as<float>(), CUDA_R_32F, size, &zero, c1.as<float>(), CUDA_R_32F, size,
                        CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
  };
  rows.push_back({size, "cublas tf32 (tensor cores)", median_ms(tf32, warmup, reps)});
  {
    // bf16 operands in the float buffers' place (the packed buffers are no longer needed).
    DeviceBuffer ba(elems * 2), bb(elems * 2), bc(elems * 2);
    if (ba.ok() && bb.ok() && bc.ok()) {
      to_bf16_kernel<<<1024, 256>>>(fa.as<float>(), ba.as<__nv_bfloat16>(), elems);
      to_bf16_kernel<<<1024, 256>>>(fb.as<float>(), bb.as<__nv_bfloat16>(), elems);
      auto bf16 = [&] {
        return cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, size, size, size, &one, bb.as<void>(), CUDA_R_16BF, size,
                            ba.as<void>(), CUDA_R_16BF, size, &zero, bc.as<void>(), CUDA_R_16BF, size, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
      };
      rows.push_back({size, "cublas bf16 (tensor cores)", median_ms(bf16, warmup, reps)});
    }
  }
  cublasDestroy(h);
#endif
}

inline double find_ms(const std::vector<BenchRow>& rows, int size, const std::string& prefix) {
  for (const BenchRow& r : rows)
    if (r.size == size && r.kernel.rfind(prefix, 0) == 0) return r.ms;
  return -1.0;
}

inline void print_table(const std::vector<BenchRow>& rows, const std::vector<int>& sizes, const char* device) {
  std::printf("\n== GPU XNOR GEMM vs cuBLAS on %s (M=N=K; median of timed calls, CUDA events)\n", device);
  std::printf("   TOPS = 2*M*N*K / time: binary TOPS for XNOR (one bit pair = one multiply-add), TFLOPS for cuBLAS\n");
  std::printf("   xnor times include the row-popcount pass; packing (float -> bits) is listed separately\n");
  std::printf("%-6s %-34s %10s %9s %9s %9s\n", "size", "kernel", "ms", "TOPS", "x sgemm", "x bf16");
  for (int size : sizes) {
    const double flop = 2.0 * size * double(size) * size;
    const double sg = find_ms(rows, size, "cublas sgemm"), bf = find_ms(rows, size, "cublas bf16");
    for (const BenchRow& r : rows) {
      if (r.size != size) continue;
      if (r.ms <= 0) {
        std::printf("%-6d %-34s %10s\n", size, r.kernel.c_str(), "failed");
        continue;
      }
      const bool packing = r.kernel.rfind("pack", 0) == 0;
      char tops[32] = "-", xs[32] = "-", xb[32] = "-";
      if (!packing) std::snprintf(tops, sizeof tops, "%.1f", flop / (r.ms * 1e-3) / 1e12);
      if (!packing && sg > 0) std::snprintf(xs, sizeof xs, "%.2f", sg / r.ms);
      if (!packing && bf > 0) std::snprintf(xb, sizeof xb, "%.2f", bf / r.ms);
      std::printf("%-6d %-34s %10.3f %9s %9s %9s\n", size, r.kernel.c_str(), r.ms, tops, xs, xb);
    }
  }
#ifndef BNN_HAVE_CUBLAS
  std::printf("(built without cuBLAS: no baseline rows; build with CUBLAS=1 and the cuBLAS flags)\n");
#endif
}

}  // namespace bnn::cuda_test
