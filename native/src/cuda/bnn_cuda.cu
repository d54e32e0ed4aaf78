// C API of the CUDA kernels: contract checks, device query, variant selection, dispatch.
// Shape and pointer checks run before any CUDA call, so they also work on a machine without a GPU.
#include "bnn_cuda.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "../xnor_gemm/reference.h"
#include "conv_index.cuh"
#include "kernels.cuh"

namespace {

using bnn::cuda::ConvGeom;

constexpr int64_t kMaxDim = int64_t{1} << 30;  // m, rows: int inside the kernels, with a tile of headroom
constexpr int64_t kMaxK = int64_t{1} << 28;   // 4 * popc(a & b) stays in int32
constexpr int64_t kMaxGridY = 65535 * 128;    // N tiles of 128 on grid.y
constexpr int kMaxDevices = 64;

thread_local std::string g_last_error;

int fail(int status, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_last_error = buf;
  return status;
}

int ok() {
  g_last_error.clear();
  return BNN_CUDA_OK;
}

int from_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return BNN_CUDA_OK;
  (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  int status = BNN_CUDA_ERR_CUDA;
  if (e == cudaErrorMemoryAllocation) status = BNN_CUDA_ERR_ALLOC;
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) status = BNN_CUDA_ERR_NO_DEVICE;
  if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction) status = BNN_CUDA_ERR_UNSUPPORTED;
  return fail(status, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

#define BNN_REQUIRE(cond, ...)                                          \
  do {                                                                  \
    if (!(cond)) return fail(BNN_CUDA_ERR_INVALID_ARG, __VA_ARGS__);    \
  } while (0)

#define BNN_TRY_CUDA(expr)                            \
  do {                                                \
    const int s_ = from_cuda((expr), #expr);          \
    if (s_ != BNN_CUDA_OK) return s_;                 \
  } while (0)

#define BNN_TRY(expr)                 \
  do {                                \
    const int s_ = (expr);            \
    if (s_ != BNN_CUDA_OK) return s_; \
  } while (0)

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Host-side part of a pointer contract (no CUDA call).
int check_ptr(const void* p, const char* name, size_t align) {
  BNN_REQUIRE(p != nullptr, "%s is null", name);
  BNN_REQUIRE(reinterpret_cast<uintptr_t>(p) % align == 0, "%s is not %zu-byte aligned", name, align);
  return BNN_CUDA_OK;
}

// Device-side part: the pointer must be device or managed memory of the current device.
int check_device_ptr(const void* p, const char* name) {
  cudaPointerAttributes attr{};
  BNN_TRY_CUDA(cudaPointerGetAttributes(&attr, p));
  if (attr.type == cudaMemoryTypeManaged) return BNN_CUDA_OK;
  BNN_REQUIRE(attr.type == cudaMemoryTypeDevice, "%s is not device memory", name);
  int dev = 0;
  BNN_TRY_CUDA(cudaGetDevice(&dev));
  BNN_REQUIRE(attr.device == dev, "%s lives on device %d, current device is %d", name, attr.device, dev);
  return BNN_CUDA_OK;
}

int64_t words_for(int64_t k, int bits) { return (k + bits - 1) / bits; }

// Stream-ordered scratch: cudaMallocAsync where memory pools exist, else cudaMalloc + sync on free.
class Scratch {
 public:
  explicit Scratch(cudaStream_t s) : stream_(s) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { release(); }
  int alloc(size_t bytes, void** out) {
    int dev = 0, pools = 0;
    BNN_TRY_CUDA(cudaGetDevice(&dev));
    BNN_TRY_CUDA(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev));
    async_ = pools != 0;
    BNN_TRY_CUDA(async_ ? cudaMallocAsync(&ptr_, bytes, stream_) : cudaMalloc(&ptr_, bytes));
    *out = ptr_;
    return BNN_CUDA_OK;
  }
  int release() {
    if (!ptr_) return BNN_CUDA_OK;
    void* p = ptr_;
    ptr_ = nullptr;
    if (async_) return from_cuda(cudaFreeAsync(p, stream_), "cudaFreeAsync");
    const int s = from_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    const int f = from_cuda(cudaFree(p), "cudaFree");
    return s != BNN_CUDA_OK ? s : f;
  }

 private:
  cudaStream_t stream_;
  void* ptr_ = nullptr;
  bool async_ = false;
};

// ---- variant selection ----------------------------------------------------------------------

struct DeviceChoice {
  std::once_flag once;
  int resolved = BNN_CUDA_GEMM_POPC;
};
DeviceChoice g_choice[kMaxDevices];

// Runs the mma kernel on small ragged problems (both copy widths) against the scalar reference.
bool mma_self_test(std::string* why) {
  if (!bnn::cuda::mma_kernel_available()) {
    *why = "no sm_80+ mma kernel image for this device";
    return false;
  }
  struct Case {
    int m, n, k;
  };
  const Case cases[] = {{70, 45, 777}, {131, 9, 1024}, {1, 130, 65}};
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (const Case& cs : cases) {
    const size_t kw = bnn::ref::packed_words(cs.k);
    std::vector<uint64_t> a(cs.m * kw), b(cs.n * kw);
    const uint64_t tail = (cs.k % 64) ? ((uint64_t{1} << (cs.k % 64)) - 1) : ~uint64_t{0};
    for (int r = 0; r < cs.m; ++r)
      for (size_t w = 0; w < kw; ++w) a[r * kw + w] = next() & (w + 1 == kw ? tail : ~uint64_t{0});
    for (int r = 0; r < cs.n; ++r)
      for (size_t w = 0; w < kw; ++w) b[r * kw + w] = next() & (w + 1 == kw ? tail : ~uint64_t{0});
    std::vector<float> want(size_t(cs.m) * cs.n), got(want.size());
    bnn::ref::xnor_gemm(a.data(), b.data(), want.data(), cs.m, cs.n, cs.k);

    void* buf = nullptr;
    const size_t bytes_a = a.size() * 8, bytes_b = b.size() * 8, bytes_c = got.size() * 4;
    const size_t bytes = bytes_a + bytes_b + bytes_c + size_t(cs.m + cs.n) * 4 + 64;
    if (cudaMalloc(&buf, bytes) != cudaSuccess) {
      (void)cudaGetLastError();
      *why = "cudaMalloc failed during the mma self-test";
      return false;
    }
    auto* da = static_cast<uint64_t*>(buf);
    auto* db = da + a.size();
    auto* dc = reinterpret_cast<float*>(db + b.size());
    auto* dpa = reinterpret_cast<int32_t*>(dc + got.size() + (got.size() & 1));
    auto* dpb = dpa + cs.m;
    cudaError_t e = cudaMemcpy(da, a.data(), bytes_a, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(db, b.data(), bytes_b, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = bnn::cuda::launch_row_popcounts(da, cs.m, kw, dpa, nullptr);
    if (e == cudaSuccess) e = bnn::cuda::launch_row_popcounts(db, cs.n, kw, dpb, nullptr);
    if (e == cudaSuccess) e = bnn::cuda::launch_xnor_gemm_mma(da, db, dc, dpa, dpb, cs.m, cs.n, int(kw), cs.k, nullptr);
    if (e == cudaSuccess) e = cudaMemcpy(got.data(), dc, bytes_c, cudaMemcpyDeviceToHost);
    cudaFree(buf);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      *why = std::string("mma self-test failed to run: ") + cudaGetErrorString(e);
      return false;
    }
    if (std::memcmp(want.data(), got.data(), bytes_c) != 0) {
      *why = "mma self-test result differs from the scalar reference";
      return false;
    }
  }
  return true;
}

// Median-of-3 milliseconds of one GEMM variant on a 2048 x 2048 x 4096 problem; < 0 on failure.
float time_variant(bool mma, const uint64_t* a, const uint64_t* b, float* c, const int32_t* pa, const int32_t* pb) {
  constexpr int kM = 2048, kN = 2048, kW = 64;
  cudaEvent_t start = nullptr, stop = nullptr;
  if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess) {
    (void)cudaGetLastError();
    if (start) cudaEventDestroy(start);
    return -1.0f;
  }
  float t[3] = {-1.0f, -1.0f, -1.0f};
  bool good = true;
  for (int rep = -1; rep < 3 && good; ++rep) {  // rep -1 warms up
    good = cudaEventRecord(start, nullptr) == cudaSuccess;
    const cudaError_t e = mma ? bnn::cuda::launch_xnor_gemm_mma(a, b, c, pa, pb, kM, kN, kW, kW * 64, nullptr)
                              : bnn::cuda::launch_xnor_gemm_popc(a, b, c, kM, kN, kW, kW * 64, nullptr);
    good = good && e == cudaSuccess && cudaEventRecord(stop, nullptr) == cudaSuccess &&
           cudaEventSynchronize(stop) == cudaSuccess;
    if (good && rep >= 0) good = cudaEventElapsedTime(&t[rep], start, stop) == cudaSuccess;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (!good) {
    (void)cudaGetLastError();
    return -1.0f;
  }
  std::sort(t, t + 3);
  return t[1];
}

// AUTO keeps the tensor-core kernel unless the CUDA-core one is clearly faster on this device.
bool mma_not_slower(std::string* why) {
  constexpr size_t kRows = 2048, kW = 64;
  void* buf = nullptr;
  const size_t words = 2 * kRows * kW, bytes = words * 8 + kRows * kRows * 4 + 2 * kRows * 4;
  if (cudaMalloc(&buf, bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return true;  // no room to measure: keep the default
  }
  auto* a = static_cast<uint64_t*>(buf);
  auto* b = a + kRows * kW;
  auto* c = reinterpret_cast<float*>(b + kRows * kW);
  auto* pa = reinterpret_cast<int32_t*>(c + kRows * kRows);
  auto* pb = pa + kRows;
  bool keep = true;
  if (cudaMemset(a, 0x5a, words * 8) == cudaSuccess && cudaMemset(pa, 0, 2 * kRows * 4) == cudaSuccess) {
    const float t_mma = time_variant(true, a, b, c, pa, pb);
    const float t_popc = time_variant(false, a, b, c, pa, pb);
    if (t_mma > 0 && t_popc > 0 && t_popc * 1.1f < t_mma) {
      keep = false;
      char msg[160];
      std::snprintf(msg, sizeof msg, "popc %.3f ms beat mma %.3f ms on a 2048x2048x4096 probe", t_popc, t_mma);
      *why = msg;
    }
  }
  (void)cudaGetLastError();
  cudaFree(buf);
  return keep;
}

int resolve_variant(int variant, int* out) {
  BNN_REQUIRE(variant == BNN_CUDA_GEMM_AUTO || variant == BNN_CUDA_GEMM_MMA || variant == BNN_CUDA_GEMM_POPC,
              "unknown gemm variant %d", variant);
  if (variant == BNN_CUDA_GEMM_POPC) {
    *out = BNN_CUDA_GEMM_POPC;
    return BNN_CUDA_OK;
  }
  if (variant == BNN_CUDA_GEMM_MMA) {
    if (!bnn::cuda::mma_kernel_available())
      return fail(BNN_CUDA_ERR_UNSUPPORTED, "mma variant needs an sm_80+ device and an sm_80/sm_90 build");
    *out = BNN_CUDA_GEMM_MMA;
    return BNN_CUDA_OK;
  }
  if (const char* env = std::getenv("BNN_CUDA_GEMM")) {  // operator override of AUTO
    if (std::strcmp(env, "popc") == 0) {
      *out = BNN_CUDA_GEMM_POPC;
      return BNN_CUDA_OK;
    }
    if (std::strcmp(env, "mma") == 0) return resolve_variant(BNN_CUDA_GEMM_MMA, out);
  }
  int dev = 0;
  BNN_TRY_CUDA(cudaGetDevice(&dev));
  BNN_REQUIRE(dev >= 0 && dev < kMaxDevices, "device ordinal %d past %d", dev, kMaxDevices);
  DeviceChoice& c = g_choice[dev];
  std::call_once(c.once, [&c]() {
    std::string why;
    if (mma_self_test(&why) && mma_not_slower(&why)) {
      c.resolved = BNN_CUDA_GEMM_MMA;
    } else {
      c.resolved = BNN_CUDA_GEMM_POPC;
      std::fprintf(stderr, "bnn_cuda: using the popc XNOR GEMM (%s)\n", why.c_str());
    }
  });
  *out = c.resolved;
  return BNN_CUDA_OK;
}

// Shared by the GEMM entry point and the conv: popcounts into scratch when the mma path needs them.
int run_gemm(const uint64_t* a, const uint64_t* b, float* c, int64_t m, int64_t n, int64_t kw, int64_t k_bits,
             int resolved, const int32_t* a_popc, const int32_t* b_popc, int32_t* scratch_popc,
             cudaStream_t stream) {
  if (resolved == BNN_CUDA_GEMM_POPC) {
    BNN_TRY_CUDA(bnn::cuda::launch_xnor_gemm_popc(a, b, c, int(m), int(n), int(kw), int(k_bits), stream));
    return BNN_CUDA_OK;
  }
  const int32_t* pa = a_popc;
  const int32_t* pb = b_popc;
  if (!pa) {
    BNN_TRY_CUDA(bnn::cuda::launch_row_popcounts(a, m, kw, scratch_popc, stream));
    pa = scratch_popc;
  }
  if (!pb) {
    BNN_TRY_CUDA(bnn::cuda::launch_row_popcounts(b, n, kw, scratch_popc + m, stream));
    pb = scratch_popc + m;
  }
  BNN_TRY_CUDA(bnn::cuda::launch_xnor_gemm_mma(a, b, c, pa, pb, int(m), int(n), int(kw), int(k_bits), stream));
  return BNN_CUDA_OK;
}

// ---- conv workspace layout ------------------------------------------------------------------

size_t align_up(size_t v) { return (v + 255) & ~size_t{255}; }

struct ConvLayout {
  size_t xp, col, wp, wsum, popc, total;
};

ConvLayout conv_layout(const ConvGeom& g) {
  ConvLayout l{};
  size_t off = 0;
  l.xp = off;
  off += align_up(size_t(g.pixels() * g.cw()) * 8);
  l.col = off;
  off += align_up(size_t(g.positions() * g.row_words()) * 8);
  l.wp = off;
  off += align_up(size_t(g.out_c * g.row_words()) * 8);
  l.wsum = off;
  off += align_up(size_t(g.taps() * g.out_c) * 4);
  l.popc = off;
  off += align_up(size_t(g.positions() + g.out_c) * 4);
  l.total = off;
  return l;
}

int conv_geom(const bnn_cuda_conv2d_params* p, ConvGeom* g) {
  BNN_REQUIRE(p != nullptr, "conv2d params are null");
  BNN_REQUIRE(p->batch >= 1 && p->in_h >= 1 && p->in_w >= 1 && p->in_c >= 1,
              "input dims must be >= 1 (batch %lld, in_h %lld, in_w %lld, in_c %lld)", (long long)p->batch,
              (long long)p->in_h, (long long)p->in_w, (long long)p->in_c);
  BNN_REQUIRE(p->k_h >= 1 && p->k_w >= 1 && p->out_c >= 1, "filter dims must be >= 1");
  BNN_REQUIRE(p->stride_h >= 1 && p->stride_w >= 1, "strides must be >= 1");
  BNN_REQUIRE(p->pad_top >= 0 && p->pad_left >= 0, "padding must be >= 0");
  BNN_REQUIRE(p->out_h >= 1 && p->out_w >= 1, "output dims must be >= 1");
  BNN_REQUIRE(p->k_h * p->k_w <= 65535, "at most 65535 filter taps");
  *g = ConvGeom{p->batch, p->in_h, p->in_w, p->in_c, p->k_h, p->k_w, p->out_c, p->stride_h,
                p->stride_w, p->pad_top, p->pad_left, p->out_h, p->out_w};
  BNN_REQUIRE(g->k_bits() <= kMaxK, "k_h*k_w*in_c %lld exceeds 2^28", (long long)g->k_bits());
  BNN_REQUIRE(g->positions() <= kMaxDim, "batch*out_h*out_w exceeds 2^30");
  BNN_REQUIRE(g->pixels() <= (int64_t{1} << 40), "input too large");
  BNN_REQUIRE(g->out_c <= kMaxGridY, "out_c exceeds %lld", (long long)kMaxGridY);
  return BNN_CUDA_OK;
}

}  // namespace

extern "C" {

const char* bnn_cuda_status_string(int status) {
  switch (status) {
    case BNN_CUDA_OK: return "ok";
    case BNN_CUDA_ERR_INVALID_ARG: return "invalid argument";
    case BNN_CUDA_ERR_NO_DEVICE: return "no CUDA device";
    case BNN_CUDA_ERR_UNSUPPORTED: return "unsupported on this device";
    case BNN_CUDA_ERR_ALLOC: return "device allocation failed";
    case BNN_CUDA_ERR_CUDA: return "CUDA error";
    default: return "unknown status";
  }
}

const char* bnn_cuda_last_error(void) { return g_last_error.c_str(); }

int bnn_cuda_device_count(int* count) {
  BNN_REQUIRE(count != nullptr, "count is null");
  *count = 0;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    g_last_error = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return BNN_CUDA_OK;
  }
  *count = n;
  return ok();
}

int bnn_cuda_device_query(int device, bnn_cuda_device_info* info) {
  BNN_REQUIRE(info != nullptr, "info is null");
  std::memset(info, 0, sizeof *info);
  info->device = device;
  int n = 0;
  const cudaError_t ce = cudaGetDeviceCount(&n);
  if (ce != cudaSuccess || device < 0 || device >= n) {
    (void)cudaGetLastError();
    std::snprintf(info->reason, sizeof info->reason, "%s",
                  ce != cudaSuccess ? cudaGetErrorString(ce) : "no CUDA device with this ordinal");
    return ok();
  }
  cudaDeviceProp prop{};
  BNN_TRY_CUDA(cudaGetDeviceProperties(&prop, device));
  std::snprintf(info->name, sizeof info->name, "%s", prop.name);
  info->cc_major = prop.major;
  info->cc_minor = prop.minor;
  info->sm_count = prop.multiProcessorCount;
  info->total_mem_bytes = prop.totalGlobalMem;
  int prev = 0;
  BNN_TRY_CUDA(cudaGetDevice(&prev));
  BNN_TRY_CUDA(cudaSetDevice(device));
  info->available = bnn::cuda::pack_kernels_available() ? 1 : 0;
  info->mma_b1 = info->available && bnn::cuda::mma_kernel_available() ? 1 : 0;
  BNN_TRY_CUDA(cudaSetDevice(prev));
  if (!info->available)
    std::snprintf(info->reason, sizeof info->reason, "no kernel image for compute capability %d.%d in this build",
                  prop.major, prop.minor);
  return ok();
}

int bnn_cuda_set_device(int device) {
  BNN_TRY_CUDA(cudaSetDevice(device));
  return ok();
}

int bnn_cuda_malloc(void** ptr, size_t bytes) {
  BNN_REQUIRE(ptr != nullptr, "ptr is null");
  *ptr = nullptr;
  BNN_REQUIRE(bytes > 0, "bytes must be > 0");
  BNN_TRY_CUDA(cudaMalloc(ptr, bytes));
  return ok();
}

int bnn_cuda_free(void* ptr) {
  if (ptr) BNN_TRY_CUDA(cudaFree(ptr));
  return ok();
}

int bnn_cuda_memcpy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return ok();
  BNN_REQUIRE(dst != nullptr && src != nullptr, "dst and src must be non-null");
  BNN_TRY_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
  return ok();
}

int bnn_cuda_synchronize(void) {
  BNN_TRY_CUDA(cudaDeviceSynchronize());
  return ok();
}

size_t bnn_cuda_packed_words(size_t k, int word_bits) {
  if (word_bits != 32 && word_bits != 64) return 0;
  return (k + size_t(word_bits) - 1) / size_t(word_bits);
}

int bnn_cuda_pack_rows(const float* src, int64_t rows, int64_t k, int64_t ld, void* dst, int word_bits, void* stream) {
  BNN_REQUIRE(word_bits == 32 || word_bits == 64, "word_bits must be 32 or 64, got %d", word_bits);
  BNN_REQUIRE(rows >= 0 && rows <= kMaxDim, "rows %lld out of range", (long long)rows);
  BNN_REQUIRE(k >= 1 && k <= kMaxK, "k %lld out of range [1, 2^28]", (long long)k);
  BNN_REQUIRE(ld >= k, "ld %lld < k %lld", (long long)ld, (long long)k);
  if (rows == 0) return ok();
  BNN_TRY(check_ptr(src, "src", 4));
  BNN_TRY(check_ptr(dst, "dst", word_bits / 8));
  BNN_TRY(check_device_ptr(src, "src"));
  BNN_TRY(check_device_ptr(dst, "dst"));
  const int64_t words32 = word_bits == 64 ? 2 * words_for(k, 64) : words_for(k, 32);
  BNN_TRY_CUDA(bnn::cuda::launch_pack_rows(src, rows, k, ld, static_cast<uint32_t*>(dst), words32, as_stream(stream)));
  return ok();
}

int bnn_cuda_pack_cols(const float* src, int64_t k, int64_t n, int64_t ld, void* dst, int word_bits, void* stream) {
  BNN_REQUIRE(word_bits == 32 || word_bits == 64, "word_bits must be 32 or 64, got %d", word_bits);
  BNN_REQUIRE(n >= 0 && n <= kMaxDim, "n %lld out of range", (long long)n);
  BNN_REQUIRE(k >= 1 && k <= kMaxK, "k %lld out of range [1, 2^28]", (long long)k);
  BNN_REQUIRE(ld >= n, "ld %lld < n %lld", (long long)ld, (long long)n);
  if (n == 0) return ok();
  BNN_TRY(check_ptr(src, "src", 4));
  BNN_TRY(check_ptr(dst, "dst", word_bits / 8));
  BNN_TRY(check_device_ptr(src, "src"));
  BNN_TRY(check_device_ptr(dst, "dst"));
  const int64_t words32 = word_bits == 64 ? 2 * words_for(k, 64) : words_for(k, 32);
  BNN_TRY_CUDA(bnn::cuda::launch_pack_cols(src, k, n, ld, 1, 0, static_cast<uint32_t*>(dst), words32, 0, words32,
                                           as_stream(stream)));
  return ok();
}

int bnn_cuda_row_popcounts(const uint64_t* packed, int64_t rows, int64_t k, int32_t* out, void* stream) {
  BNN_REQUIRE(rows >= 0 && rows <= kMaxDim, "rows %lld out of range", (long long)rows);
  BNN_REQUIRE(k >= 1 && k <= kMaxK, "k %lld out of range [1, 2^28]", (long long)k);
  if (rows == 0) return ok();
  BNN_TRY(check_ptr(packed, "packed", 8));
  BNN_TRY(check_ptr(out, "out", 4));
  BNN_TRY(check_device_ptr(packed, "packed"));
  BNN_TRY(check_device_ptr(out, "out"));
  BNN_TRY_CUDA(bnn::cuda::launch_row_popcounts(packed, rows, words_for(k, 64), out, as_stream(stream)));
  return ok();
}

int bnn_cuda_gemm_resolve(int variant, int* resolved) {
  BNN_REQUIRE(resolved != nullptr, "resolved is null");
  BNN_TRY(resolve_variant(variant, resolved));
  return ok();
}

int bnn_cuda_xnor_gemm(const uint64_t* a, const uint64_t* b, float* c, int64_t m, int64_t n, int64_t k, int variant,
                       const int32_t* a_popc, const int32_t* b_popc, void* stream) {
  BNN_REQUIRE(variant == BNN_CUDA_GEMM_AUTO || variant == BNN_CUDA_GEMM_MMA || variant == BNN_CUDA_GEMM_POPC,
              "unknown gemm variant %d", variant);
  BNN_REQUIRE(m >= 0 && m <= kMaxDim, "m %lld out of range", (long long)m);
  BNN_REQUIRE(n >= 0 && n <= kMaxGridY, "n %lld out of range", (long long)n);
  BNN_REQUIRE(k >= 1 && k <= kMaxK, "k %lld out of range [1, 2^28]", (long long)k);
  if (m == 0 || n == 0) return ok();
  BNN_TRY(check_ptr(a, "a", 8));
  BNN_TRY(check_ptr(b, "b", 8));
  BNN_TRY(check_ptr(c, "c", 4));
  if (a_popc) BNN_TRY(check_ptr(a_popc, "a_popc", 4));
  if (b_popc) BNN_TRY(check_ptr(b_popc, "b_popc", 4));
  BNN_TRY(check_device_ptr(a, "a"));
  BNN_TRY(check_device_ptr(b, "b"));
  BNN_TRY(check_device_ptr(c, "c"));
  if (a_popc) BNN_TRY(check_device_ptr(a_popc, "a_popc"));
  if (b_popc) BNN_TRY(check_device_ptr(b_popc, "b_popc"));
  int resolved = BNN_CUDA_GEMM_POPC;
  BNN_TRY(resolve_variant(variant, &resolved));
  const cudaStream_t s = as_stream(stream);
  Scratch scratch(s);
  int32_t* popc = nullptr;
  if (resolved == BNN_CUDA_GEMM_MMA && (!a_popc || !b_popc)) {
    void* p = nullptr;
    BNN_TRY(scratch.alloc(size_t(m + n) * sizeof(int32_t), &p));
    popc = static_cast<int32_t*>(p);
  }
  BNN_TRY(run_gemm(a, b, c, m, n, words_for(k, 64), k, resolved, a_popc, b_popc, popc, s));
  BNN_TRY(scratch.release());
  return ok();
}

int bnn_cuda_conv2d_workspace_bytes(const bnn_cuda_conv2d_params* p, size_t* bytes) {
  BNN_REQUIRE(bytes != nullptr, "bytes is null");
  ConvGeom g{};
  BNN_TRY(conv_geom(p, &g));
  *bytes = conv_layout(g).total;
  return ok();
}

int bnn_cuda_binary_conv2d(const float* x, const float* w, float* y, const bnn_cuda_conv2d_params* p, int variant,
                           void* workspace, size_t workspace_bytes, void* stream) {
  ConvGeom g{};
  BNN_TRY(conv_geom(p, &g));
  BNN_REQUIRE(variant == BNN_CUDA_GEMM_AUTO || variant == BNN_CUDA_GEMM_MMA || variant == BNN_CUDA_GEMM_POPC,
              "unknown gemm variant %d", variant);
  const ConvLayout l = conv_layout(g);
  BNN_REQUIRE(workspace == nullptr || workspace_bytes >= l.total, "workspace of %zu bytes, need %zu", workspace_bytes,
              l.total);
  BNN_TRY(check_ptr(x, "x", 4));
  BNN_TRY(check_ptr(w, "w", 4));
  BNN_TRY(check_ptr(y, "y", 4));
  if (workspace) BNN_TRY(check_ptr(workspace, "workspace", 256));
  BNN_TRY(check_device_ptr(x, "x"));
  BNN_TRY(check_device_ptr(w, "w"));
  BNN_TRY(check_device_ptr(y, "y"));
  if (workspace) BNN_TRY(check_device_ptr(workspace, "workspace"));
  int resolved = BNN_CUDA_GEMM_POPC;
  BNN_TRY(resolve_variant(variant, &resolved));

  const cudaStream_t s = as_stream(stream);
  Scratch scratch(s);
  char* ws = static_cast<char*>(workspace);
  if (!ws) {
    void* q = nullptr;
    BNN_TRY(scratch.alloc(l.total, &q));
    ws = static_cast<char*>(q);
  }
  auto* xp = reinterpret_cast<uint64_t*>(ws + l.xp);
  auto* col = reinterpret_cast<uint64_t*>(ws + l.col);
  auto* wp = reinterpret_cast<uint64_t*>(ws + l.wp);
  auto* wsum = reinterpret_cast<int32_t*>(ws + l.wsum);
  auto* popc = reinterpret_cast<int32_t*>(ws + l.popc);
  const int64_t cw = g.cw();

  BNN_TRY_CUDA(bnn::cuda::launch_pack_rows(x, g.pixels(), g.in_c, g.in_c, reinterpret_cast<uint32_t*>(xp), 2 * cw, s));
  BNN_TRY_CUDA(bnn::cuda::launch_pack_cols(w, g.in_c, g.out_c, g.out_c, g.taps(), g.in_c * g.out_c,
                                           reinterpret_cast<uint32_t*>(wp), 2 * g.row_words(), 2 * cw, 2 * cw, s));
  BNN_TRY_CUDA(bnn::cuda::launch_im2col_packed(xp, col, g, s));
  BNN_TRY(run_gemm(col, wp, y, g.positions(), g.out_c, g.row_words(), g.k_bits(), resolved, nullptr, nullptr, popc, s));
  const bool padded = g.pad_top > 0 || g.pad_left > 0 || (g.out_h - 1) * g.stride_h - g.pad_top + g.k_h > g.in_h ||
                      (g.out_w - 1) * g.stride_w - g.pad_left + g.k_w > g.in_w;
  if (padded) {
    BNN_TRY_CUDA(bnn::cuda::launch_filter_tap_sums(wp, wsum, g, s));
    BNN_TRY_CUDA(bnn::cuda::launch_conv_pad_correction(y, wsum, g, s));
  }
  BNN_TRY(scratch.release());
  return ok();
}

}  // extern "C"
