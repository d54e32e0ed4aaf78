#include "cuda_device.h"

#include <dlfcn.h>

#include <cstdio>

namespace bnn::binding {

namespace {

std::string join_reasons(const std::vector<bnn_cuda_device_info>& devs) {
  std::string out;
  for (const auto& d : devs) {
    if (!out.empty()) out += "; ";
    out += "device " + std::to_string(d.device) + (d.name[0] ? std::string(" (") + d.name + ")" : "") + ": " +
           (d.reason[0] ? d.reason : "unavailable");
  }
  return out;
}

Napi::Error unavailable(Napi::Env env, const char* fn, const CudaState& s) {
  Napi::Error e = Napi::Error::New(env, std::string(fn) + ": CUDA unavailable: " + s.reason);
  e.Set("code", Napi::String::New(env, "BNN_CUDA_UNAVAILABLE"));
  return e;
}

}  // namespace

CudaState& cuda_state() {
  static CudaState* s = new CudaState;  // leaked on purpose, see cuda_device.h
  return *s;
}

void probe(CudaState& s) {
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

void check_status(Napi::Env env, int status, const char* fn, const char* what) {
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
    check_status(env, bnn_cuda_free(buf.p), fn, "cudaFree");
    buf.p = nullptr;
    buf.cap = 0;
  }
  check_status(env, bnn_cuda_malloc(&buf.p, want), fn, "device allocation");
  buf.cap = want;
}

void release(DevBuf& buf) {
  if (buf.p) (void)bnn_cuda_free(buf.p);
  buf.p = nullptr;
  buf.cap = 0;
}

void to_device(Napi::Env env, const char* fn, DevBuf& buf, const void* src, size_t bytes) {
  ensure(env, fn, buf, bytes);
  check_status(env, bnn_cuda_memcpy(buf.p, src, bytes), fn, "copy to device");
}

std::unique_lock<std::mutex> need_device(Napi::Env env, const char* fn) {
  CudaState& s = cuda_state();
  std::unique_lock<std::mutex> lock(s.mu);
  probe(s);
  if (s.device < 0) throw unavailable(env, fn, s);
  // The runtime's current device is per host thread (worker_threads may call too).
  check_status(env, bnn_cuda_set_device(s.device), fn, "cudaSetDevice");
  return lock;
}

}  // namespace bnn::binding
