// bnn_cuda's module entry (native/cuda-addon/binding.gyp). Loading it makes no CUDA call.
#include "args.h"

namespace bnn::binding {

const char* addon_name() { return "bnn_cuda"; }

}  // namespace bnn::binding

namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  bnn::binding::register_cuda(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(bnn_cuda, init)
