// sgemm, conv2d, conv2dBackpropInput, conv2dBackpropFilter.
#include <climits>

#include "args.h"
#include "../fp32/fp32.h"

namespace bnn::binding {

namespace {

// sgemm(transA, transB, m, n, k, alpha, a, b, beta, c): row-major
// C[m][n] = alpha * op(A) op(B) + beta * C; A is [m][k] ([k][m] if transA), B is [k][n]
// ([n][k] if transB).
Napi::Value sgemm(const Napi::CallbackInfo& ci) {
  Args args(ci, "sgemm", 10, 10);
  const bool ta = args.flag(0, "transA"), tb = args.flag(1, "transB");
  const size_t m = args.dim(2, "m"), n = args.dim(3, "n"), k = args.dim(4, "k");
  for (size_t d : {m, n, k})
    if (d > size_t(INT_MAX)) args.fail("dimensions must be at most 2^31-1 (OpenBLAS int)");
  const float alpha = static_cast<float>(args.number(5, "alpha"));
  const float* a = args.floats(6, "a", mul(args, m, k), "m*k");
  const float* b = args.floats(7, "b", mul(args, k, n), "k*n");
  const float beta = static_cast<float>(args.number(8, "beta"));
  float* c = args.floats(9, "c", mul(args, m, n), "m*n");
  args.require_disjoint(9, "c", 6, "a");
  args.require_disjoint(9, "c", 7, "b");
  fp32::sgemm(ta, tb, m, n, k, alpha, a, b, beta, c);
  return args.env().Undefined();
}

void require_int_sizes(const Args& args, const conv::Geometry& g) {
  if (g.out_rows() > size_t(INT_MAX) || g.patch() > size_t(INT_MAX) || g.out_c > size_t(INT_MAX))
    args.fail("conv sizes must fit OpenBLAS int dimensions");
}

// conv2d(x, filter, geometry, out)
Napi::Value conv2d(const Napi::CallbackInfo& ci) {
  Args args(ci, "conv2d", 4, 4);
  const conv::Geometry g = args.geometry(2, "geometry");
  require_int_sizes(args, g);
  const float* x = args.floats(0, "x", g.input_size(), "batch*inH*inW*inC");
  const float* w = args.floats(1, "filter", g.filter_size(), "kH*kW*inC*outC");
  float* out = args.floats(3, "out", g.output_size(), "batch*outH*outW*outC");
  args.require_disjoint(3, "out", 0, "x");
  args.require_disjoint(3, "out", 1, "filter");
  fp32::conv2d(x, w, g, out);
  return args.env().Undefined();
}

// conv2dBackpropInput(dy, filter, geometry, dx)
Napi::Value conv2d_backprop_input(const Napi::CallbackInfo& ci) {
  Args args(ci, "conv2dBackpropInput", 4, 4);
  const conv::Geometry g = args.geometry(2, "geometry");
  require_int_sizes(args, g);
  const float* dy = args.floats(0, "dy", g.output_size(), "batch*outH*outW*outC");
  const float* w = args.floats(1, "filter", g.filter_size(), "kH*kW*inC*outC");
  float* dx = args.floats(3, "dx", g.input_size(), "batch*inH*inW*inC");
  args.require_disjoint(3, "dx", 0, "dy");
  args.require_disjoint(3, "dx", 1, "filter");
  fp32::conv2d_backprop_input(dy, w, g, dx);
  return args.env().Undefined();
}

// conv2dBackpropFilter(x, dy, geometry, dw)
Napi::Value conv2d_backprop_filter(const Napi::CallbackInfo& ci) {
  Args args(ci, "conv2dBackpropFilter", 4, 4);
  const conv::Geometry g = args.geometry(2, "geometry");
  require_int_sizes(args, g);
  const float* x = args.floats(0, "x", g.input_size(), "batch*inH*inW*inC");
  const float* dy = args.floats(1, "dy", g.output_size(), "batch*outH*outW*outC");
  float* dw = args.floats(3, "dw", g.filter_size(), "kH*kW*inC*outC");
  args.require_disjoint(3, "dw", 0, "x");
  args.require_disjoint(3, "dw", 1, "dy");
  fp32::conv2d_backprop_filter(x, dy, g, dw);
  return args.env().Undefined();
}

// sgemmMode([mode]): 'tiled' (deterministic, the default) or 'openblas'; returns the mode.
Napi::Value sgemm_mode(const Napi::CallbackInfo& ci) {
  Args args(ci, "sgemmMode", 0, 1);
  if (ci.Length() == 1) {
    const std::string mode = args.string(0, "mode");
    if (mode != "tiled" && mode != "openblas")
      args.fail("argument 'mode' must be 'tiled' or 'openblas', got '" + mode + "'");
    fp32::set_tiled(mode == "tiled");
  }
  return Napi::String::New(args.env(), fp32::tiled() ? "tiled" : "openblas");
}

}  // namespace

void register_fp32(Napi::Env env, Napi::Object exports) {
  export_function<sgemm_mode>(env, exports, "sgemmMode");
  export_function<sgemm>(env, exports, "sgemm");
  export_function<conv2d>(env, exports, "conv2d");
  export_function<conv2d_backprop_input>(env, exports, "conv2dBackpropInput");
  export_function<conv2d_backprop_filter>(env, exports, "conv2dBackpropFilter");
}

}  // namespace bnn::binding
