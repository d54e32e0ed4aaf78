// bnn_cuda.node's device state: the one-time probe of the driver and devices, device buffers that
// only grow, the device-side weight cache, and C API failures as JS errors.
//
// Loading the module makes no CUDA call; the first info() / compute call probes. Without a usable
// device a compute call throws an Error with code 'BNN_CUDA_UNAVAILABLE' and the reason; nothing
// aborts the process. Staging buffers are rounded to 64 KiB so ragged last batches reuse them.
// All state is process-wide behind one mutex and deliberately never freed at exit (no CUDA calls
// during static destruction, when the static runtime may already be torn down).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../cuda/bnn_cuda.h"

namespace bnn::binding {

// A device allocation that only grows.
struct DevBuf {
  void* p = nullptr;
  size_t cap = 0;
};

struct CachedWeights {
  size_t k = 0, n = 0;  // n == 0: not (or no longer) valid
  DevBuf packed;        // [n][ceil(k/64)] uint64
  DevBuf popc;          // [n] int32 (row popcounts, used by the tensor-core variant)
};

struct CudaState {
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
  std::unordered_map<uint64_t, CachedWeights> weights;
};

CudaState& cuda_state();

// Finds the driver and the first usable device; sets s.device or s.reason. Call under s.mu.
void probe(CudaState& s);

// Locks the state and makes sure a device is usable; throws BNN_CUDA_UNAVAILABLE otherwise.
std::unique_lock<std::mutex> need_device(Napi::Env env, const char* fn);

// Throws for a failed C API call: RangeError for a contract check, else Error with code
// BNN_CUDA_UNAVAILABLE (no device) or BNN_CUDA_ERROR.
void check_status(Napi::Env env, int status, const char* fn, const char* what);

// Grows buf to at least `bytes`.
void ensure(Napi::Env env, const char* fn, DevBuf& buf, size_t bytes);
void release(DevBuf& buf);
// ensure(), then a synchronous copy from host memory.
void to_device(Napi::Env env, const char* fn, DevBuf& buf, const void* src, size_t bytes);

}  // namespace bnn::binding
