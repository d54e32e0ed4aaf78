// The N-API layer shared by both addons (bnn_native: addon.cc, bnn_cuda: cuda_addon.cc):
// argument validation, the exception guard and the export helper. Every check failure throws
// Napi::TypeError "<function>: argument '<name>' must be <what was expected>, got <what it was>".
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../conv/geometry.h"

namespace bnn::binding {

class Args {
 public:
  // Requires between min_count and max_count arguments.
  Args(const Napi::CallbackInfo& info, const char* fn, size_t min_count, size_t max_count);

  Napi::Env env() const { return info_.Env(); }
  size_t count() const { return info_.Length(); }
  bool is_nullish(size_t i) const { return i >= count() || info_[i].IsNull() || info_[i].IsUndefined(); }

  // A non-negative integer (a JS number with no fraction, <= 2^53) of at least `min`.
  size_t dim(size_t i, const char* name, size_t min = 0) const;
  double number(size_t i, const char* name) const;
  bool flag(size_t i, const char* name) const;
  std::string string(size_t i, const char* name) const;
  Napi::Object object(size_t i, const char* name) const;

  // A Float32Array of exactly `length` elements (`length_expr` says why, e.g. "m*k").
  float* floats(size_t i, const char* name, size_t length, const char* length_expr) const;
  // A Uint8Array of exactly `length` elements.
  const uint8_t* bytes(size_t i, const char* name, size_t length, const char* length_expr) const;
  // Like floats(), but null or undefined gives nullptr.
  float* floats_or_null(size_t i, const char* name, size_t length, const char* length_expr) const;
  // A packed-bit buffer: an Int32Array of exactly 2*words elements whose byteOffset is a
  // multiple of 8, viewed as `words` uint64 words.
  uint64_t* words(size_t i, const char* name, size_t words, const char* words_expr) const;

  // Fields of an options object (argument i, already checked to be an object).
  size_t dim_field(size_t i, const char* name, const char* field, size_t min) const;
  double number_field(size_t i, const char* name, const char* field, const double* fallback) const;

  // The conv geometry object (see src/native/addon.ts Conv2DGeometry).
  conv::Geometry geometry(size_t i, const char* name) const;

  // Throws unless the byte ranges of arguments a and b are disjoint.
  void require_disjoint(size_t a, const char* a_name, size_t b, const char* b_name) const;
  // Throws "argument '<name>' must be at most <max_text>, got <value>" unless value <= max.
  void require_at_most(size_t value, const char* name, size_t max, const std::string& max_text) const;

  [[noreturn]] void fail(const std::string& message) const;

 private:
  [[noreturn]] void fail_arg(size_t i, const char* name, const std::string& expected) const;
  // `where` is the argument or field ("geometry.inH") as the message names it.
  [[noreturn]] void fail_value(const std::string& where, const Napi::Value& v, const std::string& expected) const;
  std::string describe(const Napi::Value& v) const;
  const Napi::CallbackInfo& info_;
  std::string fn_;
};

// Overflow-checked a * b for buffer sizes; throws TypeError via args.fail().
size_t mul(const Args& args, size_t a, size_t b);

// An XNOR dot product k - 2*popcount is exact in float below 2^24 (CPU and CUDA kernels alike).
constexpr size_t kMaxExactK = size_t{1} << 24;
// Throws unless k (argument 'k' of an XNOR GEMM) is below kMaxExactK.
void require_exact_k(const Args& args, size_t k);
// Throws unless the binary conv's patch kH*kW*inC is below kMaxExactK.
void require_exact_patch(const Args& args, const conv::Geometry& g);

// The module's name in error messages ("bnn_native", "bnn_cuda"), defined by its entry file.
const char* addon_name();

// Wraps a binding so C++ exceptions reach JS as errors: Napi errors pass through,
// std::invalid_argument becomes RangeError, anything else Error("<addon_name()>: ...").
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(addon_name()) + ": " + e.what());
  }
}

// exports[name] = F, guarded.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void export_function(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<guarded<F>>(env, name));
}

// Registration hooks, one per binding file. bnn_native registers all but register_cuda;
// bnn_cuda registers only register_cuda (bind_cuda.cc).
void register_runtime(Napi::Env env, Napi::Object exports);
void register_xnor(Napi::Env env, Napi::Object exports);
void register_fp32(Napi::Env env, Napi::Object exports);
void register_elementwise(Napi::Env env, Napi::Object exports);
void register_codec(Napi::Env env, Napi::Object exports);
void register_cuda(Napi::Env env, Napi::Object exports);

}  // namespace bnn::binding
