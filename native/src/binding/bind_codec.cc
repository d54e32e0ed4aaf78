// All-reduce wire-format kernels (native/src/codec): codecAddF32, codecSignEncode,
// codecSignAccumulate, codecHalfEncode, codecHalfAccumulate, codecScaleInto,
// codecFirstNonFinite, codecKernel. The accumulate kernels return whether a decoded value was
// NaN or ±Inf; codecScaleInto whether a result was out of range.
#include <cfloat>
#include <cmath>
#include <string>

#include "args.h"
#include "../codec/codec.h"

namespace bnn::binding {

namespace {

size_t float_length(const Napi::CallbackInfo& ci, const Args& args, size_t i, const char* name) {
  const Napi::Value v = ci[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    args.floats(i, name, 0, "any");  // throws the standard message
  return v.As<Napi::TypedArray>().ElementLength();
}

uint8_t* out_bytes(const Args& args, size_t i, const char* name, size_t length, const char* expr) {
  return const_cast<uint8_t*>(args.bytes(i, name, length, expr));
}

float divisor_arg(const Args& args, size_t i) {
  if (args.is_nullish(i)) return 1.0f;
  const double d = args.number(i, "divisor");
  if (!(d > 0) || !std::isfinite(d)) args.fail("argument 'divisor' must be a finite number > 0");
  return static_cast<float>(d);
}

// (src: Uint8Array (width·n bytes), acc: Float32Array (n), first, divisor = 1): the argument
// checks codecAddF32 (width 4) and codecHalfAccumulate (width 2) share, then the kernel.
template <bool (*Kernel)(const uint8_t*, float*, size_t, bool, float)>
Napi::Value accumulate_bytes(const Napi::CallbackInfo& ci, const char* fn, size_t width, const char* src_expr) {
  Args args(ci, fn, 3, 4);
  const size_t n = float_length(ci, args, 1, "acc");
  const uint8_t* src = args.bytes(0, "src", mul(args, n, width), src_expr);
  float* acc = args.floats(1, "acc", n, "acc.length");
  const bool first = args.flag(2, "first");
  args.require_disjoint(0, "src", 1, "acc");
  return Napi::Boolean::New(args.env(), Kernel(src, acc, n, first, divisor_arg(args, 3)));
}

// codecAddF32(src: Uint8Array (4n bytes), acc: Float32Array (n), first, divisor = 1)
Napi::Value add_f32(const Napi::CallbackInfo& ci) {
  return accumulate_bytes<codec::add_f32>(ci, "codecAddF32", 4, "4*acc.length");
}

// codecSignEncode(values, residual, scales: Uint8Array (4·ceil(n/256)), bits: Uint8Array (ceil(n/8)), decodedOut | null)
Napi::Value sign_encode(const Napi::CallbackInfo& ci) {
  Args args(ci, "codecSignEncode", 4, 5);
  const size_t n = float_length(ci, args, 0, "values");
  const float* values = args.floats(0, "values", n, "values.length");
  float* residual = args.floats(1, "residual", n, "values.length");
  uint8_t* scales = out_bytes(args, 2, "scales", 4 * codec::sign_blocks(n), "4*ceil(values.length/256)");
  uint8_t* bits = out_bytes(args, 3, "bits", (n + 7) / 8, "ceil(values.length/8)");
  float* decoded = args.floats_or_null(4, "decodedOut", n, "values.length");
  args.require_disjoint(0, "values", 1, "residual");
  args.require_disjoint(2, "scales", 3, "bits");
  for (size_t i : {2, 3}) {
    const char* name = i == 2 ? "scales" : "bits";
    args.require_disjoint(0, "values", i, name);
    args.require_disjoint(1, "residual", i, name);
    if (decoded) args.require_disjoint(4, "decodedOut", i, name);
  }
  if (decoded) {
    args.require_disjoint(1, "residual", 4, "decodedOut");
    if (decoded != values) args.require_disjoint(0, "values", 4, "decodedOut");
  }
  codec::sign_encode(values, residual, scales, bits, decoded, n);
  return args.env().Undefined();
}

// codecSignAccumulate(scales: Uint8Array (4·ceil(n/256)), bits: Uint8Array (ceil(n/8)), acc: Float32Array (n), first, divisor = 1)
Napi::Value sign_accumulate(const Napi::CallbackInfo& ci) {
  Args args(ci, "codecSignAccumulate", 4, 5);
  const size_t n = float_length(ci, args, 2, "acc");
  const uint8_t* scales = args.bytes(0, "scales", 4 * codec::sign_blocks(n), "4*ceil(acc.length/256)");
  const uint8_t* bits = args.bytes(1, "bits", (n + 7) / 8, "ceil(acc.length/8)");
  float* acc = args.floats(2, "acc", n, "acc.length");
  const bool first = args.flag(3, "first");
  args.require_disjoint(0, "scales", 2, "acc");
  args.require_disjoint(1, "bits", 2, "acc");
  return Napi::Boolean::New(args.env(), codec::sign_accumulate(scales, bits, acc, n, first, divisor_arg(args, 4)));
}

// codecHalfEncode(src: Float32Array (n), dst: Uint8Array (2n), decodedOut | null)
Napi::Value half_encode(const Napi::CallbackInfo& ci) {
  Args args(ci, "codecHalfEncode", 2, 3);
  const size_t n = float_length(ci, args, 0, "src");
  const float* src = args.floats(0, "src", n, "src.length");
  uint8_t* dst = out_bytes(args, 1, "dst", mul(args, n, 2), "2*src.length");
  float* decoded = args.floats_or_null(2, "decodedOut", n, "src.length");
  args.require_disjoint(0, "src", 1, "dst");
  if (decoded) {
    args.require_disjoint(1, "dst", 2, "decodedOut");
    if (decoded != src) args.require_disjoint(0, "src", 2, "decodedOut");
  }
  codec::half_encode(src, dst, decoded, n);
  return args.env().Undefined();
}

// codecHalfAccumulate(src: Uint8Array (2n), acc: Float32Array (n), first, divisor = 1)
Napi::Value half_accumulate(const Napi::CallbackInfo& ci) {
  return accumulate_bytes<codec::half_accumulate>(ci, "codecHalfAccumulate", 2, "2*acc.length");
}

// codecScaleInto(src: Float32Array (n), dst: Float32Array (n), scale, limit = Infinity): dst may
// be src; returns whether some result is NaN or at least `limit` in magnitude.
Napi::Value scale_into(const Napi::CallbackInfo& ci) {
  Args args(ci, "codecScaleInto", 3, 4);
  const size_t n = float_length(ci, args, 0, "src");
  const float* src = args.floats(0, "src", n, "src.length");
  float* dst = args.floats(1, "dst", n, "src.length");
  const double scale = args.number(2, "scale");
  const bool unlimited = args.is_nullish(3) || (ci[3].IsNumber() && ci[3].As<Napi::Number>().DoubleValue() == INFINITY);
  const double limit = unlimited ? INFINITY : args.number(3, "limit");
  if (!(limit > 0)) args.fail("argument 'limit' must be a number > 0 (Infinity: test for non-finite results)");
  if (dst != src) args.require_disjoint(0, "src", 1, "dst");
  // compared in float32, as the JavaScript twin does (Math.fround(limit)); above FLT_MAX: +Inf
  const float lim = limit > FLT_MAX ? INFINITY : static_cast<float>(limit);
  return Napi::Boolean::New(args.env(), codec::scale_into(src, dst, n, scale, lim));
}

// codecFirstNonFinite(src: Float32Array): the index of its first NaN or ±Inf, or -1.
Napi::Value first_non_finite(const Napi::CallbackInfo& ci) {
  Args args(ci, "codecFirstNonFinite", 1, 1);
  const size_t n = float_length(ci, args, 0, "src");
  const size_t i = codec::first_non_finite(args.floats(0, "src", n, "src.length"), n);
  return Napi::Number::New(args.env(), i == n ? -1.0 : static_cast<double>(i));
}

// codecKernel(name?): sets the variant when given ('auto' = best), returns the one in use.
Napi::Value kernel(const Napi::CallbackInfo& ci) {
  Args args(ci, "codecKernel", 0, 1);
  if (!args.is_nullish(0)) codec::set_variant(args.string(0, "name").c_str());
  return Napi::String::New(args.env(), codec::active_variant());
}

}  // namespace

void register_codec(Napi::Env env, Napi::Object exports) {
  export_function<add_f32>(env, exports, "codecAddF32");
  export_function<sign_encode>(env, exports, "codecSignEncode");
  export_function<sign_accumulate>(env, exports, "codecSignAccumulate");
  export_function<half_encode>(env, exports, "codecHalfEncode");
  export_function<half_accumulate>(env, exports, "codecHalfAccumulate");
  export_function<scale_into>(env, exports, "codecScaleInto");
  export_function<first_non_finite>(env, exports, "codecFirstNonFinite");
  export_function<kernel>(env, exports, "codecKernel");
}

}  // namespace bnn::binding
