#include "args.h"

#include <cmath>

namespace bnn::binding {

namespace {
constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    default: return "TypedArray";
  }
}

// A JS number with no fraction, >= min and <= 2^53 - 1.
bool is_dim(const Napi::Value& v, size_t min) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  return d >= double(min) && d <= kMaxSafe && std::floor(d) == d;
}
}  // namespace

Args::Args(const Napi::CallbackInfo& info, const char* fn, size_t min_count, size_t max_count)
    : info_(info), fn_(fn) {
  if (info.Length() < min_count || info.Length() > max_count) {
    const std::string want = min_count == max_count ? std::to_string(min_count)
                                                    : std::to_string(min_count) + " to " + std::to_string(max_count);
    fail("expected " + want + " arguments, got " + std::to_string(info.Length()));
  }
}

void Args::fail(const std::string& message) const { throw Napi::TypeError::New(info_.Env(), fn_ + ": " + message); }

void Args::fail_arg(size_t i, const char* name, const std::string& expected) const {
  fail_value(name, i < count() ? info_[i] : info_.Env().Undefined(), expected);
}

void Args::fail_value(const std::string& where, const Napi::Value& v, const std::string& expected) const {
  fail("argument '" + where + "' must be " + expected + ", got " + describe(v));
}

std::string Args::describe(const Napi::Value& v) const {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
  if (v.IsNumber()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "number %.17g", v.As<Napi::Number>().DoubleValue());
    return buf;
  }
  if (v.IsString()) return "string '" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsTypedArray()) {
    const auto ta = v.As<Napi::TypedArray>();
    return std::string(typed_array_name(ta.TypedArrayType())) + " of length " + std::to_string(ta.ElementLength()) +
           " at byteOffset " + std::to_string(ta.ByteOffset());
  }
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  return "object";
}

size_t Args::dim(size_t i, const char* name, size_t min) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  if (!is_dim(v, min)) fail_arg(i, name, "an integer >= " + std::to_string(min));
  return static_cast<size_t>(v.As<Napi::Number>().DoubleValue());
}

double Args::number(size_t i, const char* name) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) fail_arg(i, name, "a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Args::flag(size_t i, const char* name) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  if (!v.IsBoolean()) fail_arg(i, name, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Args::string(size_t i, const char* name) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  if (!v.IsString()) fail_arg(i, name, "a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object Args::object(size_t i, const char* name) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  if (!v.IsObject() || v.IsTypedArray() || v.IsArray() || v.IsFunction()) fail_arg(i, name, "an options object");
  return v.As<Napi::Object>();
}

float* Args::floats(size_t i, const char* name, size_t length, const char* length_expr) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  const std::string expected =
      std::string("a Float32Array of length ") + length_expr + " = " + std::to_string(length);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail_arg(i, name, expected);
  auto arr = v.As<Napi::Float32Array>();
  if (arr.ElementLength() != length) fail_arg(i, name, expected);
  return arr.Data();
}

const uint8_t* Args::bytes(size_t i, const char* name, size_t length, const char* length_expr) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  const std::string expected = std::string("a Uint8Array of length ") + length_expr + " = " + std::to_string(length);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) fail_arg(i, name, expected);
  auto arr = v.As<Napi::Uint8Array>();
  if (arr.ElementLength() != length) fail_arg(i, name, expected);
  return arr.Data();
}

float* Args::floats_or_null(size_t i, const char* name, size_t length, const char* length_expr) const {
  if (is_nullish(i)) return nullptr;
  return floats(i, name, length, length_expr);
}

uint64_t* Args::words(size_t i, const char* name, size_t words, const char* words_expr) const {
  const Napi::Value v = i < count() ? info_[i] : info_.Env().Undefined();
  const std::string expected = std::string("an Int32Array of length 2*") + words_expr + " = " +
                               std::to_string(2 * words) + " (packed bits, byteOffset a multiple of 8)";
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) fail_arg(i, name, expected);
  auto arr = v.As<Napi::Int32Array>();
  if (arr.ElementLength() != 2 * words || arr.ByteOffset() % 8 != 0) fail_arg(i, name, expected);
  return reinterpret_cast<uint64_t*>(arr.Data());
}

size_t Args::dim_field(size_t i, const char* name, const char* field, size_t min) const {
  const Napi::Value v = info_[i].As<Napi::Object>().Get(field);
  if (!is_dim(v, min)) fail_value(std::string(name) + "." + field, v, "an integer >= " + std::to_string(min));
  return static_cast<size_t>(v.As<Napi::Number>().DoubleValue());
}

double Args::number_field(size_t i, const char* name, const char* field, const double* fallback) const {
  const Napi::Value v = info_[i].As<Napi::Object>().Get(field);
  if (fallback && v.IsUndefined()) return *fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    fail_value(std::string(name) + "." + field, v, "a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

conv::Geometry Args::geometry(size_t i, const char* name) const {
  object(i, name);
  conv::Geometry g;
  g.batch = dim_field(i, name, "batch", 1);
  g.in_h = dim_field(i, name, "inH", 1);
  g.in_w = dim_field(i, name, "inW", 1);
  g.in_c = dim_field(i, name, "inC", 1);
  g.filter_h = dim_field(i, name, "kH", 1);
  g.filter_w = dim_field(i, name, "kW", 1);
  g.out_c = dim_field(i, name, "outC", 1);
  g.stride_h = dim_field(i, name, "strideH", 1);
  g.stride_w = dim_field(i, name, "strideW", 1);
  g.pad_top = dim_field(i, name, "padTop", 0);
  g.pad_left = dim_field(i, name, "padLeft", 0);
  g.out_h = dim_field(i, name, "outH", 1);
  g.out_w = dim_field(i, name, "outW", 1);
  // Guard the size products (each factor is <= 2^53) before anything is indexed.
  mul(*this, mul(*this, mul(*this, g.batch, g.in_h), g.in_w), g.in_c);
  mul(*this, mul(*this, mul(*this, g.filter_h, g.filter_w), g.in_c), g.out_c);
  mul(*this, mul(*this, mul(*this, g.batch, g.out_h), g.out_w), mul(*this, g.out_c, g.patch()));
  return g;
}

void Args::require_disjoint(size_t a, const char* a_name, size_t b, const char* b_name) const {
  const auto x = info_[a].As<Napi::TypedArray>(), y = info_[b].As<Napi::TypedArray>();
  if (x.ArrayBuffer() != y.ArrayBuffer()) return;
  const size_t x0 = x.ByteOffset(), x1 = x0 + x.ByteLength(), y0 = y.ByteOffset(), y1 = y0 + y.ByteLength();
  if (x0 < y1 && y0 < x1)
    fail(std::string("arguments '") + a_name + "' and '" + b_name + "' must not overlap in memory");
}

void Args::require_at_most(size_t value, const char* name, size_t max, const std::string& max_text) const {
  if (value > max)
    fail(std::string("argument '") + name + "' must be at most " + max_text + ", got " + std::to_string(value));
}

size_t mul(const Args& args, size_t a, size_t b) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > (size_t{1} << 53)) args.fail("buffer size overflows");
  return r;
}

void require_exact_k(const Args& args, size_t k) {
  if (k >= kMaxExactK) args.fail("argument 'k' must be below 2^24 (exact float results), got " + std::to_string(k));
}

void require_exact_patch(const Args& args, const conv::Geometry& g) {
  if (g.patch() >= kMaxExactK) args.fail("kH*kW*inC must be below 2^24");
}

}  // namespace bnn::binding
