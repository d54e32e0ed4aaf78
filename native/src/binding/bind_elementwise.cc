// signInto, steGrad, adamw, batchNormForward, batchNormBackward, batchNormApply.
#include <cmath>

#include "args.h"
#include "../elementwise/elementwise.h"

namespace bnn::binding {

namespace {

// The length of Float32Array argument i (which must be one), for "same length as" checks.
size_t length_of(const Napi::CallbackInfo& ci, const Args& args, size_t i, const char* name) {
  const Napi::Value v = ci[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    args.floats(i, name, 0, "any");  // throws the standard message
  return v.As<Napi::TypedArray>().ElementLength();
}

// signInto(src, dst): dst.length == src.length; dst may be src.
Napi::Value sign_into(const Napi::CallbackInfo& ci) {
  Args args(ci, "signInto", 2, 2);
  const size_t n = length_of(ci, args, 0, "src");
  const float* src = args.floats(0, "src", n, "src.length");
  float* dst = args.floats(1, "dst", n, "src.length");
  elementwise::sign_into(src, dst, n);
  return args.env().Undefined();
}

// steGrad(grad, x, dst, threshold = 1): all the same length; dst may be grad.
Napi::Value ste_grad(const Napi::CallbackInfo& ci) {
  Args args(ci, "steGrad", 3, 4);
  const size_t n = length_of(ci, args, 0, "grad");
  const float* grad = args.floats(0, "grad", n, "grad.length");
  const float* x = args.floats(1, "x", n, "grad.length");
  float* dst = args.floats(2, "dst", n, "grad.length");
  const double threshold = args.is_nullish(3) ? 1.0 : args.number(3, "threshold");
  if (threshold < 0) args.fail("argument 'threshold' must be >= 0");
  elementwise::ste_grad(grad, x, dst, n, static_cast<float>(threshold));
  return args.env().Undefined();
}

// adamw(p, g, m, v, {lr, step, beta1?, beta2?, epsilon?, weightDecay?, clip?}): in place over p, m, v;
// returns true when some updated parameter or second moment is NaN or ±Inf (a NaN or ±Inf
// gradient value always makes its second moment so).
Napi::Value adamw(const Napi::CallbackInfo& ci) {
  Args args(ci, "adamw", 5, 5);
  const size_t n = length_of(ci, args, 0, "p");
  float* p = args.floats(0, "p", n, "p.length");
  const float* g = args.floats(1, "g", n, "p.length");
  float* m = args.floats(2, "m", n, "p.length");
  float* v = args.floats(3, "v", n, "p.length");
  args.require_disjoint(0, "p", 1, "g");
  args.require_disjoint(0, "p", 2, "m");
  args.require_disjoint(0, "p", 3, "v");
  args.require_disjoint(2, "m", 3, "v");
  args.require_disjoint(1, "g", 2, "m");
  args.require_disjoint(1, "g", 3, "v");
  args.object(4, "options");
  const double d_beta1 = 0.9, d_beta2 = 0.999, d_eps = 1e-8, d_zero = 0.0;
  elementwise::AdamWParams h;
  h.lr = args.number_field(4, "options", "lr", nullptr);
  h.step = args.number_field(4, "options", "step", nullptr);
  h.beta1 = args.number_field(4, "options", "beta1", &d_beta1);
  h.beta2 = args.number_field(4, "options", "beta2", &d_beta2);
  h.eps = args.number_field(4, "options", "epsilon", &d_eps);
  h.weight_decay = args.number_field(4, "options", "weightDecay", &d_zero);
  h.clip = args.number_field(4, "options", "clip", &d_zero);
  if (!(h.step >= 1) || h.step != std::floor(h.step)) args.fail("argument 'options.step' must be an integer >= 1");
  if (!(h.beta1 >= 0 && h.beta1 < 1) || !(h.beta2 >= 0 && h.beta2 < 1))
    args.fail("arguments 'options.beta1' and 'options.beta2' must be in [0, 1)");
  if (!(h.eps >= 0) || !(h.clip >= 0)) args.fail("arguments 'options.epsilon' and 'options.clip' must be >= 0");
  return Napi::Boolean::New(args.env(), elementwise::adamw(p, g, m, v, n, h));
}

// batchNormForward(x, rows, channels, gamma|null, beta|null, eps, y, mean, invStd)
Napi::Value batch_norm_forward(const Napi::CallbackInfo& ci) {
  Args args(ci, "batchNormForward", 9, 9);
  const size_t rows = args.dim(1, "rows", 1), c = args.dim(2, "channels", 1);
  const size_t n = mul(args, rows, c);
  const float* x = args.floats(0, "x", n, "rows*channels");
  const float* gamma = args.floats_or_null(3, "gamma", c, "channels");
  const float* beta = args.floats_or_null(4, "beta", c, "channels");
  const double eps = args.number(5, "eps");
  if (eps < 0) args.fail("argument 'eps' must be >= 0");
  float* y = args.floats(6, "y", n, "rows*channels");
  float* mean = args.floats(7, "mean", c, "channels");
  float* inv_std = args.floats(8, "invStd", c, "channels");
  args.require_disjoint(7, "mean", 0, "x");
  args.require_disjoint(8, "invStd", 0, "x");
  args.require_disjoint(7, "mean", 8, "invStd");
  elementwise::batch_norm_forward(x, rows, c, gamma, beta, static_cast<float>(eps), y, mean, inv_std);
  return args.env().Undefined();
}

// batchNormBackward(dy, x, rows, channels, gamma|null, mean, invStd, dx, dgamma|null, dbeta|null)
Napi::Value batch_norm_backward(const Napi::CallbackInfo& ci) {
  Args args(ci, "batchNormBackward", 10, 10);
  const size_t rows = args.dim(2, "rows", 1), c = args.dim(3, "channels", 1);
  const size_t n = mul(args, rows, c);
  const float* dy = args.floats(0, "dy", n, "rows*channels");
  const float* x = args.floats(1, "x", n, "rows*channels");
  const float* gamma = args.floats_or_null(4, "gamma", c, "channels");
  const float* mean = args.floats(5, "mean", c, "channels");
  const float* inv_std = args.floats(6, "invStd", c, "channels");
  float* dx = args.floats(7, "dx", n, "rows*channels");
  float* dgamma = args.floats_or_null(8, "dgamma", c, "channels");
  float* dbeta = args.floats_or_null(9, "dbeta", c, "channels");
  elementwise::batch_norm_backward(dy, x, rows, c, gamma, mean, inv_std, dx, dgamma, dbeta);
  return args.env().Undefined();
}

// batchNormApply(x, rows, channels, scale, shift, y): y = x * scale + shift per channel.
Napi::Value batch_norm_apply(const Napi::CallbackInfo& ci) {
  Args args(ci, "batchNormApply", 6, 6);
  const size_t rows = args.dim(1, "rows"), c = args.dim(2, "channels", 1);
  const size_t n = mul(args, rows, c);
  const float* x = args.floats(0, "x", n, "rows*channels");
  const float* scale = args.floats(3, "scale", c, "channels");
  const float* shift = args.floats(4, "shift", c, "channels");
  float* y = args.floats(5, "y", n, "rows*channels");
  elementwise::batch_norm_apply(x, rows, c, scale, shift, y);
  return args.env().Undefined();
}

}  // namespace

void register_elementwise(Napi::Env env, Napi::Object exports) {
  export_function<sign_into>(env, exports, "signInto");
  export_function<ste_grad>(env, exports, "steGrad");
  export_function<adamw>(env, exports, "adamw");
  export_function<batch_norm_forward>(env, exports, "batchNormForward");
  export_function<batch_norm_backward>(env, exports, "batchNormBackward");
  export_function<batch_norm_apply>(env, exports, "batchNormApply");
}

}  // namespace bnn::binding
