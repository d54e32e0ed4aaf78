// bnn_cuda.node's functions: the CUDA kernels (native/src/cuda/bnn_cuda.h) on host buffers, and a
// device-side weight cache (src/native/cuda.ts documents them).
//
// Every function validates its arguments first, with the same checks and messages as bnn_native,
// then needs a usable device (cuda_device.h). Host buffers are copied into device buffers that are
// cached and only grow, run on the legacy default stream, and copied back (cudaMemcpy from
// pageable memory: synchronous). The weight cache keeps packed columns (and their popcounts) on
// the device under a numeric key.
#include <cstdint>
#include <string>

#include "args.h"
#include "cuda_device.h"
#include "../cuda/bnn_cuda.h"
#include "../cuda/conv_params.h"
#include "../xnor_gemm/reference.h"

namespace bnn::binding {

namespace {

constexpr size_t kMaxRows = size_t{1} << 30;     // bnn_cuda.h: m, rows <= 2^30
constexpr size_t kMaxCols = size_t{65535} * 128; // bnn_cuda.h: n on grid.y in tiles of 128

// ---- info ------------------------------------------------------------------------------------

Napi::Value info(const Napi::CallbackInfo& ci) {
  Args args(ci, "info", 0, 0);
  Napi::Env env = args.env();
  CudaState& s = cuda_state();
  std::lock_guard<std::mutex> lock(s.mu);
  probe(s);
  Napi::Array devices = Napi::Array::New(env, s.devices.size());
  for (size_t i = 0; i < s.devices.size(); ++i) {
    const bnn_cuda_device_info& d = s.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("ordinal", d.device);
    o.Set("name", d.name);
    o.Set("ccMajor", d.cc_major);
    o.Set("ccMinor", d.cc_minor);
    o.Set("smCount", d.sm_count);
    o.Set("mmaB1", d.mma_b1 != 0);
    o.Set("totalMemBytes", static_cast<double>(d.total_mem_bytes));
    o.Set("available", d.available != 0);
    o.Set("reason", d.available ? env.Null() : Napi::String::New(env, d.reason));
    devices.Set(static_cast<uint32_t>(i), o);
  }
  std::string gemm_error;
  if (s.device >= 0 && s.variant < 0) {
    int v = 0;
    if (bnn_cuda_gemm_resolve(BNN_CUDA_GEMM_AUTO, &v) == BNN_CUDA_OK) s.variant = v;
    else gemm_error = bnn_cuda_last_error();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", s.device >= 0);
  out.Set("reason", s.device >= 0 ? env.Null() : Napi::String::New(env, s.reason));
  out.Set("device", s.device >= 0 ? Napi::Number::New(env, s.device) : env.Null());
  out.Set("devices", devices);
  out.Set("gemmVariant", s.variant == BNN_CUDA_GEMM_MMA    ? Napi::String::New(env, "mma")
                         : s.variant == BNN_CUDA_GEMM_POPC ? Napi::String::New(env, "popc")
                                                           : env.Null());
  if (!gemm_error.empty()) out.Set("gemmError", gemm_error);
  out.Set("cachedWeights", static_cast<double>(s.weights.size()));
  return out;
}

// ---- host-buffer kernels ---------------------------------------------------------------------

// xnorGemmPacked(a: Int32Array[2*m*kw], b: Int32Array[2*n*kw], m, n, k, c: Float32Array[m*n])
Napi::Value xnor_gemm_packed(const Napi::CallbackInfo& ci) {
  static const char* fn = "xnorGemmPacked";
  Args args(ci, fn, 6, 6);
  const size_t m = args.dim(2, "m"), n = args.dim(3, "n"), k = args.dim(4, "k", 1);
  require_exact_k(args, k);
  args.require_at_most(m, "m", kMaxRows, "2^30");
  args.require_at_most(n, "n", kMaxCols, std::to_string(kMaxCols));
  const size_t kw = ref::packed_words(k);
  const uint64_t* a = args.words(0, "a", mul(args, m, kw), "m*ceil(k/64)");
  const uint64_t* b = args.words(1, "b", mul(args, n, kw), "n*ceil(k/64)");
  float* c = args.floats(5, "c", mul(args, m, n), "m*n");
  args.require_disjoint(5, "c", 0, "a");
  args.require_disjoint(5, "c", 1, "b");
  Napi::Env env = args.env();
  auto lock = need_device(env, fn);
  if (m == 0 || n == 0) return env.Undefined();
  CudaState& s = cuda_state();
  to_device(env, fn, s.a, a, m * kw * 8);
  to_device(env, fn, s.b, b, n * kw * 8);
  ensure(env, fn, s.c, m * n * 4);
  check_status(env,
               bnn_cuda_xnor_gemm(static_cast<const uint64_t*>(s.a.p), static_cast<const uint64_t*>(s.b.p),
                                  static_cast<float*>(s.c.p), int64_t(m), int64_t(n), int64_t(k),
                                  BNN_CUDA_GEMM_AUTO, nullptr, nullptr, nullptr),
               fn, "bnn_cuda_xnor_gemm");
  check_status(env, bnn_cuda_memcpy(c, s.c.p, m * n * 4), fn, "copy from device");
  return env.Undefined();
}

// binaryConv2d(x: Float32Array NHWC, filter: Float32Array HWIO, geometry, out: Float32Array NHWC)
Napi::Value binary_conv2d(const Napi::CallbackInfo& ci) {
  static const char* fn = "binaryConv2d";
  Args args(ci, fn, 4, 4);
  const conv::Geometry g = args.geometry(2, "geometry");
  require_exact_patch(args, g);
  const float* x = args.floats(0, "x", g.input_size(), "batch*inH*inW*inC");
  const float* w = args.floats(1, "filter", g.filter_size(), "kH*kW*inC*outC");
  float* out = args.floats(3, "out", g.output_size(), "batch*outH*outW*outC");
  args.require_disjoint(3, "out", 0, "x");
  args.require_disjoint(3, "out", 1, "filter");
  const bnn_cuda_conv2d_params p = cuda::to_conv2d_params(g);
  Napi::Env env = args.env();
  size_t ws_bytes = 0;
  // Host-side geometry limits (no CUDA call): a RangeError even without a device.
  check_status(env, bnn_cuda_conv2d_workspace_bytes(&p, &ws_bytes), fn, "geometry check");
  auto lock = need_device(env, fn);
  CudaState& s = cuda_state();
  to_device(env, fn, s.x, x, g.input_size() * 4);
  to_device(env, fn, s.w, w, g.filter_size() * 4);
  ensure(env, fn, s.y, g.output_size() * 4);
  ensure(env, fn, s.ws, ws_bytes);
  check_status(env,
               bnn_cuda_binary_conv2d(static_cast<const float*>(s.x.p), static_cast<const float*>(s.w.p),
                                      static_cast<float*>(s.y.p), &p, BNN_CUDA_GEMM_AUTO, s.ws.p, s.ws.cap, nullptr),
               fn, "bnn_cuda_binary_conv2d");
  check_status(env, bnn_cuda_memcpy(out, s.y.p, g.output_size() * 4), fn, "copy from device");
  return env.Undefined();
}

// ---- device-side weight cache ----------------------------------------------------------------

uint64_t weight_key(const Args& args, size_t i) { return static_cast<uint64_t>(args.dim(i, "key", 0)); }

// packWeights(key, w: Float32Array[k*n], k, n): packs the columns of w [k][n] on the device and
// keeps them (and their popcounts) under key, replacing what was there.
Napi::Value pack_weights(const Napi::CallbackInfo& ci) {
  static const char* fn = "packWeights";
  Args args(ci, fn, 4, 4);
  const uint64_t key = weight_key(args, 0);
  const size_t k = args.dim(2, "k", 1), n = args.dim(3, "n", 1);
  require_exact_k(args, k);
  args.require_at_most(n, "n", kMaxCols, std::to_string(kMaxCols));
  const float* w = args.floats(1, "w", mul(args, k, n), "k*n");
  Napi::Env env = args.env();
  auto lock = need_device(env, fn);
  CudaState& s = cuda_state();
  CachedWeights& entry = s.weights[key];
  entry.k = entry.n = 0;  // invalid until packed: a failure below leaves no stale entry
  try {
    to_device(env, fn, s.wstage, w, k * n * 4);
    ensure(env, fn, entry.packed, n * ref::packed_words(k) * 8);
    ensure(env, fn, entry.popc, n * 4);
    check_status(env,
                 bnn_cuda_pack_cols(static_cast<const float*>(s.wstage.p), int64_t(k), int64_t(n), int64_t(n),
                                    entry.packed.p, 64, nullptr),
                 fn, "bnn_cuda_pack_cols");
    check_status(env,
                 bnn_cuda_row_popcounts(static_cast<const uint64_t*>(entry.packed.p), int64_t(n), int64_t(k),
                                        static_cast<int32_t*>(entry.popc.p), nullptr),
                 fn, "bnn_cuda_row_popcounts");
  } catch (...) {
    release(entry.packed);
    release(entry.popc);
    s.weights.erase(key);
    throw;
  }
  entry.k = k;
  entry.n = n;
  return env.Undefined();
}

// xnorDenseCached(x: Float32Array[m*k], m, k, key, n, out: Float32Array[m*n]):
// out = sign(x) · sign(W) with W the [k][n] weights cached under key.
Napi::Value xnor_dense_cached(const Napi::CallbackInfo& ci) {
  static const char* fn = "xnorDenseCached";
  Args args(ci, fn, 6, 6);
  const size_t m = args.dim(1, "m"), k = args.dim(2, "k", 1);
  const uint64_t key = weight_key(args, 3);
  const size_t n = args.dim(4, "n", 1);
  require_exact_k(args, k);
  args.require_at_most(m, "m", kMaxRows, "2^30");
  args.require_at_most(n, "n", kMaxCols, std::to_string(kMaxCols));
  const float* x = args.floats(0, "x", mul(args, m, k), "m*k");
  float* out = args.floats(5, "out", mul(args, m, n), "m*n");
  args.require_disjoint(5, "out", 0, "x");
  Napi::Env env = args.env();
  auto lock = need_device(env, fn);
  CudaState& s = cuda_state();
  const auto it = s.weights.find(key);
  if (it == s.weights.end() || it->second.n == 0)
    throw Napi::RangeError::New(env, std::string(fn) + ": no weights cached under key " + std::to_string(key) +
                                         " (call packWeights first)");
  const CachedWeights& wt = it->second;
  if (wt.k != k || wt.n != n)
    throw Napi::RangeError::New(env, std::string(fn) + ": weights under key " + std::to_string(key) + " are [k][n] = [" +
                                         std::to_string(wt.k) + "][" + std::to_string(wt.n) + "], got k = " +
                                         std::to_string(k) + ", n = " + std::to_string(n));
  if (m == 0) return env.Undefined();
  const size_t kw = ref::packed_words(k);
  to_device(env, fn, s.x, x, m * k * 4);
  ensure(env, fn, s.xp, m * kw * 8);
  ensure(env, fn, s.xpopc, m * 4);
  ensure(env, fn, s.y, m * n * 4);
  check_status(env,
               bnn_cuda_pack_rows(static_cast<const float*>(s.x.p), int64_t(m), int64_t(k), int64_t(k), s.xp.p, 64,
                                  nullptr),
               fn, "bnn_cuda_pack_rows");
  check_status(env,
               bnn_cuda_row_popcounts(static_cast<const uint64_t*>(s.xp.p), int64_t(m), int64_t(k),
                                      static_cast<int32_t*>(s.xpopc.p), nullptr),
               fn, "bnn_cuda_row_popcounts");
  check_status(env,
               bnn_cuda_xnor_gemm(static_cast<const uint64_t*>(s.xp.p), static_cast<const uint64_t*>(wt.packed.p),
                                  static_cast<float*>(s.y.p), int64_t(m), int64_t(n), int64_t(k), BNN_CUDA_GEMM_AUTO,
                                  static_cast<const int32_t*>(s.xpopc.p), static_cast<const int32_t*>(wt.popc.p),
                                  nullptr),
               fn, "bnn_cuda_xnor_gemm");
  check_status(env, bnn_cuda_memcpy(out, s.y.p, m * n * 4), fn, "copy from device");
  return env.Undefined();
}

// dropWeights(key?): frees the weights cached under key (all when omitted); returns how many.
Napi::Value drop_weights(const Napi::CallbackInfo& ci) {
  Args args(ci, "dropWeights", 0, 1);
  const bool all = args.is_nullish(0);
  const uint64_t key = all ? 0 : weight_key(args, 0);
  CudaState& s = cuda_state();
  std::lock_guard<std::mutex> lock(s.mu);
  size_t dropped = 0;
  for (auto it = s.weights.begin(); it != s.weights.end();) {
    if (all || it->first == key) {
      release(it->second.packed);
      release(it->second.popc);
      it = s.weights.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return Napi::Number::New(args.env(), static_cast<double>(dropped));
}

}  // namespace

void register_cuda(Napi::Env env, Napi::Object exports) {
  export_function<info>(env, exports, "info");
  export_function<xnor_gemm_packed>(env, exports, "xnorGemmPacked");
  export_function<binary_conv2d>(env, exports, "binaryConv2d");
  export_function<pack_weights>(env, exports, "packWeights");
  export_function<xnor_dense_cached>(env, exports, "xnorDenseCached");
  export_function<drop_weights>(env, exports, "dropWeights");
}

}  // namespace bnn::binding
