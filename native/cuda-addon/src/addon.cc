// bnn_cuda.node: N-API binding of the CUDA kernels (native/src/cuda/bnn_cuda.h) on host buffers.
//
// Every function validates its arguments first (Napi::TypeError naming the argument, shared with
// the CPU addon: native/src/binding/args.cc), then needs a usable device: without one it throws an
// Error with code 'BNN_CUDA_UNAVAILABLE' and the reason; it never aborts the process. Loading the
// module makes no CUDA call; the first info() / compute call probes the driver and the devices.
//
// Host buffers are copied into device buffers that are cached and only grow, run on the legacy
// default stream, and copied back (cudaMemcpy from pageable memory: synchronous). The weight cache
// keeps packed columns (and their popcounts) on the device under a numeric key. All state is
// process-wide behind one mutex and deliberately never freed at exit (no CUDA calls during
// static destruction, when the static runtime may already be torn down).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "bnn_cuda.h"

namespace {

using bnn::binding::Args;
using bnn::binding::mul;

constexpr size_t kMaxExactK = size_t{1} << 24;  // k - 2*popc is exact in float below 2^24
constexpr size_t kMaxRows = size_t{1} << 30;     // bnn_cuda_h: m, rows <= 2^30
constexpr size_t kMaxCols = size_t{65535} * 128; // bnn_cuda_h: n on grid.y in tiles of 128

// A device allocation that only grows (rounded to 64 KiB so ragged last batches reuse it).
struct DevBuf {
  void* p = nullptr;
  size_t cap = 0;
};

struct Weights {
  size_t k = 0, n = 0;
  DevBuf packed;  // [n][ceil(k/64)] uint64
  DevBuf popc;    // [n] int32 (row popcounts, used by the tensor-core variant)
};

struct State {
  std::mutex mu;
  bool probed = false;
  int device = -1;     // the device in use (first usable ordinal), -1 when none
  std::string reason;  // why device < 0
  std::vector<bnn_cuda_device_info> devices;
  int variant = -1;    // resolved AUTO GEMM variant, -1 until asked
  // Staging buffers, shared by the calls (one call runs at a time under mu).
  DevBuf a, b, c;            // xnorGemmPacked
  DevBuf x, w, y, ws;        // binaryConv2d; x/y also xnorDenseCached
  DevBuf xp, xpopc, wstage;  // xnorDenseCached activations, packWeights staging
  std::unordered_map<uint64_t, Weights> weights;
};

State& state() {
  static State* s = new State;  // leaked on purpose, see the header comment
  return *s;
}

std::string join_reasons(const std::vector<bnn_cuda_device_info>& devs) {
  std::string out;
  for (const auto& d : devs) {
    if (!out.empty()) out += "; ";
    out += "device " + std::to_string(d.device) + (d.name[0] ? std::string(" (") + d.name + ")" : "") + ": " +
           (d.reason[0] ? d.reason : "unavailable");
  }
  return out;
}

// Finds the driver and the first usable device; sets s.device or s.reason. Called under s.mu.
void probe(State& s) {
  if (s.probed) return;
  s.probed = true;
  // The static runtime dlopens the driver itself; asking first gives a precise reason.
  if (void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL); h == nullptr) {
    const char* e = dlerror();
    s.reason = std::string("CUDA driver not found (") + (e ? e : "libcuda.so.1 could not be loaded") + ")";
    return;
  }
  int count = 0;
  if (bnn_cuda_device_count(&count) != BNN_CUDA_OK || count <= 0) {
    const std::string detail = bnn_cuda_last_error();
    s.reason = "no CUDA device" + (detail.empty() ? std::string() : " (" + detail + ")");
    return;
  }
  for (int i = 0; i < count; ++i) {
    bnn_cuda_device_info info{};
    if (bnn_cuda_device_query(i, &info) != BNN_CUDA_OK) {
      info.available = 0;
      info.device = i;
      std::snprintf(info.reason, sizeof info.reason, "%s", bnn_cuda_last_error());
    }
    s.devices.push_back(info);
    if (s.device < 0 && info.available) s.device = i;
  }
  if (s.device < 0) {
    s.reason = "no usable CUDA device: " + join_reasons(s.devices);
    return;
  }
  if (bnn_cuda_set_device(s.device) != BNN_CUDA_OK) {
    s.reason = std::string("cannot select CUDA device ") + std::to_string(s.device) + ": " + bnn_cuda_last_error();
    s.device = -1;
  }
}

Napi::Error unavailable(Napi::Env env, const char* fn, const State& s) {
  Napi::Error e = Napi::Error::New(env, std::string(fn) + ": CUDA unavailable: " + s.reason);
  e.Set("code", Napi::String::New(env, "BNN_CUDA_UNAVAILABLE"));
  return e;
}

// Throws a JS error for a failed C API call: RangeError for a contract check, Error otherwise.
void check(Napi::Env env, int status, const char* fn, const char* what) {
  if (status == BNN_CUDA_OK) return;
  const std::string msg = std::string(fn) + ": " + what + " failed: " + bnn_cuda_status_string(status) + ": " +
                          bnn_cuda_last_error();
  if (status == BNN_CUDA_ERR_INVALID_ARG) throw Napi::RangeError::New(env, msg);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, status == BNN_CUDA_ERR_NO_DEVICE ? "BNN_CUDA_UNAVAILABLE" : "BNN_CUDA_ERROR"));
  throw e;
}

void ensure(Napi::Env env, const char* fn, DevBuf& buf, size_t bytes) {
  if (bytes <= buf.cap) return;
  const size_t want = (bytes + 65535) & ~size_t{65535};
  if (buf.p) {
    check(env, bnn_cuda_free(buf.p), fn, "cudaFree");
    buf.p = nullptr;
    buf.cap = 0;
  }
  check(env, bnn_cuda_malloc(&buf.p, want), fn, "device allocation");
  buf.cap = want;
}

void release(DevBuf& buf) {
  if (buf.p) (void)bnn_cuda_free(buf.p);
  buf.p = nullptr;
  buf.cap = 0;
}

void to_device(Napi::Env env, const char* fn, DevBuf& buf, const void* src, size_t bytes) {
  ensure(env, fn, buf, bytes);
  check(env, bnn_cuda_memcpy(buf.p, src, bytes), fn, "copy to device");
}

// Locks the state and makes sure a device is usable; throws BNN_CUDA_UNAVAILABLE otherwise.
std::unique_lock<std::mutex> need_device(Napi::Env env, const char* fn) {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mu);
  probe(s);
  if (s.device < 0) throw unavailable(env, fn, s);
  // The runtime's current device is per host thread (worker_threads may call too).
  check(env, bnn_cuda_set_device(s.device), fn, "cudaSetDevice");
  return lock;
}

size_t packed_words(size_t k) { return (k + 63) / 64; }

void check_k(const Args& args, size_t k) {
  if (k >= kMaxExactK) args.fail("argument 'k' must be below 2^24 (exact float results), got " + std::to_string(k));
}
void check_rows(const Args& args, size_t v, const char* name) {
  if (v > kMaxRows) args.fail(std::string("argument '") + name + "' must be at most 2^30, got " + std::to_string(v));
}
void check_cols(const Args& args, size_t v, const char* name) {
  if (v > kMaxCols)
    args.fail(std::string("argument '") + name + "' must be at most " + std::to_string(kMaxCols) + ", got " +
              std::to_string(v));
}

// ---- info ------------------------------------------------------------------------------------

Napi::Value info(const Napi::CallbackInfo& ci) {
  Args args(ci, "info", 0, 0);
  Napi::Env env = args.env();
  State& s = state();
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
  check_k(args, k);
  check_rows(args, m, "m");
  check_cols(args, n, "n");
  const size_t kw = packed_words(k);
  const uint64_t* a = args.words(0, "a", mul(args, m, kw), "m*ceil(k/64)");
  const uint64_t* b = args.words(1, "b", mul(args, n, kw), "n*ceil(k/64)");
  float* c = args.floats(5, "c", mul(args, m, n), "m*n");
  args.require_disjoint(5, "c", 0, "a");
  args.require_disjoint(5, "c", 1, "b");
  Napi::Env env = args.env();
  auto lock = need_device(env, fn);
  if (m == 0 || n == 0) return env.Undefined();
  State& s = state();
  to_device(env, fn, s.a, a, m * kw * 8);
  to_device(env, fn, s.b, b, n * kw * 8);
  ensure(env, fn, s.c, m * n * 4);
  check(env,
        bnn_cuda_xnor_gemm(static_cast<const uint64_t*>(s.a.p), static_cast<const uint64_t*>(s.b.p),
                           static_cast<float*>(s.c.p), int64_t(m), int64_t(n), int64_t(k), BNN_CUDA_GEMM_AUTO, nullptr,
                           nullptr, nullptr),
        fn, "bnn_cuda_xnor_gemm");
  check(env, bnn_cuda_memcpy(c, s.c.p, m * n * 4), fn, "copy from device");
  return env.Undefined();
}

// binaryConv2d(x: Float32Array NHWC, filter: Float32Array HWIO, geometry, out: Float32Array NHWC)
Napi::Value binary_conv2d(const Napi::CallbackInfo& ci) {
  static const char* fn = "binaryConv2d";
  Args args(ci, fn, 4, 4);
  const bnn::conv::Geometry g = args.geometry(2, "geometry");
  if (g.patch() >= kMaxExactK) args.fail("kH*kW*inC must be below 2^24");
  const float* x = args.floats(0, "x", g.input_size(), "batch*inH*inW*inC");
  const float* w = args.floats(1, "filter", g.filter_size(), "kH*kW*inC*outC");
  float* out = args.floats(3, "out", g.output_size(), "batch*outH*outW*outC");
  args.require_disjoint(3, "out", 0, "x");
  args.require_disjoint(3, "out", 1, "filter");
  bnn_cuda_conv2d_params p{};
  p.batch = int64_t(g.batch);
  p.in_h = int64_t(g.in_h);
  p.in_w = int64_t(g.in_w);
  p.in_c = int64_t(g.in_c);
  p.k_h = int64_t(g.filter_h);
  p.k_w = int64_t(g.filter_w);
  p.out_c = int64_t(g.out_c);
  p.stride_h = int64_t(g.stride_h);
  p.stride_w = int64_t(g.stride_w);
  p.pad_top = int64_t(g.pad_top);
  p.pad_left = int64_t(g.pad_left);
  p.out_h = int64_t(g.out_h);
  p.out_w = int64_t(g.out_w);
  Napi::Env env = args.env();
  size_t ws_bytes = 0;
  // Host-side geometry limits (no CUDA call): a RangeError even without a device.
  check(env, bnn_cuda_conv2d_workspace_bytes(&p, &ws_bytes), fn, "geometry check");
  auto lock = need_device(env, fn);
  State& s = state();
  to_device(env, fn, s.x, x, g.input_size() * 4);
  to_device(env, fn, s.w, w, g.filter_size() * 4);
  ensure(env, fn, s.y, g.output_size() * 4);
  ensure(env, fn, s.ws, ws_bytes);
  check(env,
        bnn_cuda_binary_conv2d(static_cast<const float*>(s.x.p), static_cast<const float*>(s.w.p),
                               static_cast<float*>(s.y.p), &p, BNN_CUDA_GEMM_AUTO, s.ws.p, s.ws.cap, nullptr),
        fn, "bnn_cuda_binary_conv2d");
  check(env, bnn_cuda_memcpy(out, s.y.p, g.output_size() * 4), fn, "copy from device");
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
  check_k(args, k);
  check_cols(args, n, "n");
  const float* w = args.floats(1, "w", mul(args, k, n), "k*n");
  Napi::Env env = args.env();
  auto lock = need_device(env, fn);
  State& s = state();
  Weights& entry = s.weights[key];
  entry.k = entry.n = 0;  // invalid until packed: a failure below leaves no stale entry
  try {
    to_device(env, fn, s.wstage, w, k * n * 4);
    ensure(env, fn, entry.packed, n * packed_words(k) * 8);
    ensure(env, fn, entry.popc, n * 4);
    check(env,
          bnn_cuda_pack_cols(static_cast<const float*>(s.wstage.p), int64_t(k), int64_t(n), int64_t(n), entry.packed.p,
                             64, nullptr),
          fn, "bnn_cuda_pack_cols");
    check(env,
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
  check_k(args, k);
  check_rows(args, m, "m");
  check_cols(args, n, "n");
  const float* x = args.floats(0, "x", mul(args, m, k), "m*k");
  float* out = args.floats(5, "out", mul(args, m, n), "m*n");
  args.require_disjoint(5, "out", 0, "x");
  Napi::Env env = args.env();
  auto lock = need_device(env, fn);
  State& s = state();
  const auto it = s.weights.find(key);
  if (it == s.weights.end() || it->second.n == 0)
    throw Napi::RangeError::New(env, std::string(fn) + ": no weights cached under key " + std::to_string(key) +
                                         " (call packWeights first)");
  const Weights& wt = it->second;
  if (wt.k != k || wt.n != n)
    throw Napi::RangeError::New(env, std::string(fn) + ": weights under key " + std::to_string(key) + " are [k][n] = [" +
                                         std::to_string(wt.k) + "][" + std::to_string(wt.n) + "], got k = " +
                                         std::to_string(k) + ", n = " + std::to_string(n));
  if (m == 0) return env.Undefined();
  const size_t kw = packed_words(k);
  to_device(env, fn, s.x, x, m * k * 4);
  ensure(env, fn, s.xp, m * kw * 8);
  ensure(env, fn, s.xpopc, m * 4);
  ensure(env, fn, s.y, m * n * 4);
  check(env, bnn_cuda_pack_rows(static_cast<const float*>(s.x.p), int64_t(m), int64_t(k), int64_t(k), s.xp.p, 64, nullptr),
        fn, "bnn_cuda_pack_rows");
  check(env,
        bnn_cuda_row_popcounts(static_cast<const uint64_t*>(s.xp.p), int64_t(m), int64_t(k),
                               static_cast<int32_t*>(s.xpopc.p), nullptr),
        fn, "bnn_cuda_row_popcounts");
  check(env,
        bnn_cuda_xnor_gemm(static_cast<const uint64_t*>(s.xp.p), static_cast<const uint64_t*>(wt.packed.p),
                           static_cast<float*>(s.y.p), int64_t(m), int64_t(n), int64_t(k), BNN_CUDA_GEMM_AUTO,
                           static_cast<const int32_t*>(s.xpopc.p), static_cast<const int32_t*>(wt.popc.p), nullptr),
        fn, "bnn_cuda_xnor_gemm");
  check(env, bnn_cuda_memcpy(out, s.y.p, m * n * 4), fn, "copy from device");
  return env.Undefined();
}

// dropWeights(key?): frees the weights cached under key (all when omitted); returns how many.
Napi::Value drop_weights(const Napi::CallbackInfo& ci) {
  Args args(ci, "dropWeights", 0, 1);
  const bool all = args.is_nullish(0);
  const uint64_t key = all ? 0 : weight_key(args, 0);
  State& s = state();
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

// Napi errors pass through; anything else becomes Error("bnn_cuda: ...") instead of aborting.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("bnn_cuda: ") + e.what());
  }
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New<guarded<info>>(env, "info"));
  exports.Set("xnorGemmPacked", Napi::Function::New<guarded<xnor_gemm_packed>>(env, "xnorGemmPacked"));
  exports.Set("binaryConv2d", Napi::Function::New<guarded<binary_conv2d>>(env, "binaryConv2d"));
  exports.Set("packWeights", Napi::Function::New<guarded<pack_weights>>(env, "packWeights"));
  exports.Set("xnorDenseCached", Napi::Function::New<guarded<xnor_dense_cached>>(env, "xnorDenseCached"));
  exports.Set("dropWeights", Napi::Function::New<guarded<drop_weights>>(env, "dropWeights"));
  return exports;
}

}  // namespace

NODE_API_MODULE(bnn_cuda, init)
