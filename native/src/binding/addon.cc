// bnn_native's module entry and runtime controls: info(), setKernel(), setThreads().
#include "args.h"
#include "../common/cpu_features.h"
#include "../common/thread_pool.h"
#include "../fp32/fp32.h"
#include "../xnor_gemm/xnor_gemm.h"

#ifndef BNN_NATIVE_VERSION
#define BNN_NATIVE_VERSION "0.1.0"
#endif

namespace bnn::binding {

namespace {

Napi::Value info(const Napi::CallbackInfo& ci) {
  Args args(ci, "info", 0, 0);
  Napi::Env env = args.env();
  const CpuFeatures& f = cpu_features();
  Napi::Object isa = Napi::Object::New(env);
  isa.Set("avx2", f.avx2);
  isa.Set("popcnt", f.popcnt);
  isa.Set("avx512f", f.avx512f);
  isa.Set("avx512bw", f.avx512bw);
  isa.Set("avx512dq", f.avx512dq);
  isa.Set("avx512vl", f.avx512vl);
  isa.Set("avx512vpopcntdq", f.avx512vpopcntdq);
  const auto names = xnor::available_kernels();
  Napi::Array kernels = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) kernels.Set(i, names[i]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", BNN_NATIVE_VERSION);
  out.Set("isa", isa);
  out.Set("kernels", kernels);
  out.Set("kernel", xnor::active_kernels().name);
  out.Set("kernelSelection", xnor::selection_note());
  out.Set("threads", static_cast<double>(ThreadPool::global().threads()));
  out.Set("openblasThreads", static_cast<double>(fp32::blas_threads()));
  out.Set("openblasConfig", fp32::blas_config());
  return out;
}

Napi::Value set_kernel(const Napi::CallbackInfo& ci) {
  Args args(ci, "setKernel", 1, 1);
  const std::string name = args.string(0, "name");
  xnor::set_kernel(name);  // std::invalid_argument (-> RangeError) names the available ones
  return Napi::String::New(args.env(), xnor::active_kernels().name);
}

Napi::Value set_threads(const Napi::CallbackInfo& ci) {
  Args args(ci, "setThreads", 1, 1);
  const size_t n = args.dim(0, "n", 0);
  args.require_at_most(n, "n", 1024, "1024");
  ThreadPool::global().set_threads(n);
  fp32::set_blas_threads(ThreadPool::global().threads());
  return Napi::Number::New(args.env(), static_cast<double>(ThreadPool::global().threads()));
}

}  // namespace

const char* addon_name() { return "bnn_native"; }

void register_runtime(Napi::Env env, Napi::Object exports) {
  export_function<info>(env, exports, "info");
  export_function<set_kernel>(env, exports, "setKernel");
  export_function<set_threads>(env, exports, "setThreads");
}

}  // namespace bnn::binding

namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  // Make the pool and OpenBLAS agree from the start.
  bnn::fp32::set_blas_threads(bnn::ThreadPool::global().threads());
  bnn::binding::register_runtime(env, exports);
  bnn::binding::register_xnor(env, exports);
  bnn::binding::register_fp32(env, exports);
  bnn::binding::register_elementwise(env, exports);
  bnn::binding::register_codec(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(bnn_native, init)
